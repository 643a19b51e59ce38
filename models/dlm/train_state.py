"""The state the training loop (train.py, every family) keeps beside its model: an EMA copy of
the weights, a checkpoint to resume from, and the fp16 EMA weights (ema.pt) that the exporters
read."""
import copy
import os

import torch


def ema_copy(model: torch.nn.Module) -> torch.nn.Module:
    ema = copy.deepcopy(model).eval()
    for q in ema.parameters():
        q.requires_grad_(False)
    return ema


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    # Warm-up: early weights are noise, so the average follows the model closely at first.
    with torch.no_grad():
        d = min(decay, (1 + step) / (10 + step))
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.mul_(d).add_(pm.detach(), alpha=1 - d)


def save_checkpoint(path: str, model, ema, opt, step: int, tokens: int, wall: float) -> None:
    torch.save({'model': model.state_dict(), 'ema': ema.state_dict(), 'opt': opt.state_dict(),
                'step': step, 'tokens': tokens, 'wall': wall}, path)


def load_checkpoint(path: str, model, ema, opt, device) -> tuple[int, int, float]:
    """Restores the three state dicts in place; returns (step, tokens seen, wall seconds)."""
    ck = torch.load(path, map_location=device)
    model.load_state_dict(ck['model'])
    ema.load_state_dict(ck['ema'])
    opt.load_state_dict(ck['opt'])
    return ck['step'], ck['tokens'], ck['wall']


def save_ema_fp16(ema: torch.nn.Module, out_dir: str) -> None:
    sd = {k: t.detach().to('cpu', torch.float16 if t.is_floating_point() else t.dtype)
          for k, t in ema.state_dict().items()}
    torch.save(sd, os.path.join(out_dir, 'ema.pt'))
