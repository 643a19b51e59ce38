"""Trains a model of the zoo: `python -m dlm.train --family mdlm --preset tiny --out DIR`.

Shared loop for every family: AdamW with warmup and cosine decay, EMA weights, checkpoint and
resume, fixed seeds, a tqdm bar with loss and tokens/s, a wall-clock budget, validation, and a
results.json that the card generator reads. A family plugs in by adding an entry to FAMILIES
(build the network, compute the loss, the validation metrics; see Family)."""
import argparse
import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from .asarm import Asarm, AsarmConfig
from .dit import DiT, DiTConfig, causal_bias, count_params
from .mdlm import ar_loss, mdlm_loss
from .bd3lm import bd3lm_loss
from . import asarm_train, e2d2, uniform_train
from .train_state import ema_copy, ema_update, load_checkpoint, save_checkpoint, save_ema_fp16

PRESETS = {
    # name: (d_model, n_layers, n_heads, cond_dim, seq_len, batch)
    'test': dict(d_model=32, n_layers=1, n_heads=2, cond_dim=16, seq_len=32, batch=8),
    'tiny': dict(d_model=64, n_layers=2, n_heads=4, cond_dim=32, seq_len=128, batch=16),
    # The CPU-trained shipped Duo / LDDM models (6 minutes on 2 shared cores): ~1.5M parameters.
    'cpu': dict(d_model=128, n_layers=2, n_heads=4, cond_dim=64, seq_len=128, batch=16),
    # BD3-LM / E2D2 models trained on this 2-core CPU in ~6 minutes (d_model 128, 3 layers).
    'cpu-block': dict(d_model=128, n_layers=3, n_heads=4, cond_dim=64, seq_len=128, batch=8),
    'small': dict(d_model=256, n_layers=4, n_heads=4, cond_dim=128, seq_len=256, batch=32),
    # For an H100 and ~8 minutes on ~2.7M tokens (~100 epochs, hence dropout): 15.5M parameters,
    # a 31 MB file with fp16 weights (the default must stay under 40 MB).
    'default': dict(d_model=384, n_layers=6, n_heads=6, cond_dim=128, seq_len=256, batch=256,
                    dropout=0.1),
    # The judge and the other families' shipped models: ~8M parameters, 16 MB in fp16 (< 20 MB).
    'judge': dict(d_model=256, n_layers=6, n_heads=4, cond_dim=128, seq_len=256, batch=256,
                  dropout=0.1),
    # The judge and the other families on the full corpus's 8192-token vocabulary (one GPU run,
    # models/gpu/train_all.sh): the larger embedding and head take 'judge' to 20.5 MB in fp16,
    # past the 20 MB a non-default model may take in git; one layer fewer: ~9.4M, 18.8 MB.
    'judge-8k': dict(d_model=256, n_layers=5, n_heads=4, cond_dim=128, seq_len=256, batch=256,
                     dropout=0.1),
}


class CausalLM(torch.nn.Module):
    """The DiT with a causal bias and no time input: the autoregressive judge of the yardstick."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.backbone = DiT(cfg)

    def forward(self, tokens, attn_bias=None):
        bias = causal_bias(tokens.shape[1], tokens.device)
        if attn_bias is not None:
            bias = bias + attn_bias
        return self.backbone(tokens, attn_bias=bias)


class TokenStream:
    """Random fixed-length windows of a uint16 id file (documents separated by [EOS])."""

    def __init__(self, path: str, seq_len: int):
        self.ids = np.fromfile(path, dtype=np.uint16)
        self.seq_len = seq_len
        if len(self.ids) <= seq_len:
            raise SystemExit(f'{path}: {len(self.ids)} tokens, fewer than one window of {seq_len}')

    def batch(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        starts = rng.integers(0, len(self.ids) - self.seq_len, size=n)
        return torch.from_numpy(np.stack([self.ids[s:s + self.seq_len] for s in starts]).astype(np.int64))

    def windows(self):
        """Every non-overlapping window, in order (validation)."""
        n = len(self.ids) // self.seq_len
        return torch.from_numpy(self.ids[:n * self.seq_len].astype(np.int64)).view(n, self.seq_len)


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def _dit_results(a) -> dict:
    return {'loss_weighting': a.loss_weighting, 't_clip': [a.t_min, a.t_max], 'curriculum_steps': a.curriculum_steps}


def _mdlm_loss(a, model, x0, gen, mask_id):
    return mdlm_loss(model, x0, mask_id, gen, eps=a.eps, t_min=a.t_min, t_max=a.t_max, weighting=a.loss_weighting)


def _bd3lm_loss(a, model, x0, gen, mask_id):
    # Each step trains one of the block sizes the model will be served with.
    bs = a.block_sizes[int(torch.randint(len(a.block_sizes), (1,), generator=gen))]
    return bd3lm_loss(model, x0, mask_id, gen, bs, eps=a.eps, t_min=a.t_min, t_max=a.t_max,
                      weighting=a.loss_weighting)


def _nelbo(fn):
    """A family's validation NELBO (nats/token) as the metric the loop averages."""
    return lambda a, model, x0, gen, mask_id: {'val_nelbo': float(fn(a, model, x0, gen, mask_id))}


@dataclass(frozen=True)
class Family:
    """What a family plugs into the loop. Everything else (optimizer, schedule, EMA, checkpoint
    and resume, budget, results.json) is shared.

    build(config, args) -> network; loss(args, model, x0, gen, mask_id) -> (loss to minimise,
    NELBO or NLL to log); val(args, model, x0, gen, mask_id) -> {metric: nats/token} for one
    batch of validation windows, averaged over rows and val_repeats noise draws; ppl names the
    metric whose exp results.json reports, and under which key."""
    build: Callable[[Any, argparse.Namespace], torch.nn.Module]
    loss: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    val: Callable[..., dict[str, float]]
    ppl: tuple[str, str] = ('val_nelbo', 'val_ppl_bound')
    config: type = DiTConfig
    presets: dict = field(default_factory=lambda: PRESETS)
    val_repeats: int = 4
    lr: Callable[[Any], float] = lambda cfg: 3e-4 if cfg.d_model >= 384 else 1e-3
    weight_decay: float = 0.0
    eval_every: int = 500
    add_args: Callable[[argparse.ArgumentParser], None] | None = None
    results: Callable[[argparse.Namespace], dict] = _dit_results


# The families `--family` offers. A new one adds an entry (its module keeps the network and the
# loss; see uniform_train.py, e2d2.py, asarm_train.py).
FAMILIES: dict[str, Family] = {
    'mdlm': Family(build=lambda cfg, a: DiT(cfg), loss=_mdlm_loss,
                   val=_nelbo(lambda a, m, x0, g, mask: mdlm_loss(m, x0, mask, g, eps=a.eps)[1])),
    'ar': Family(build=lambda cfg, a: CausalLM(cfg), loss=lambda a, m, x0, g, mask: ar_loss(m, x0),
                 val=lambda a, m, x0, g, mask: {'val_nll': float(ar_loss(m, x0)[1])},
                 ppl=('val_nll', 'val_ppl'), val_repeats=1),
    # Validation: the unclipped bound at the first (served default) block size.
    'bd3lm': Family(build=lambda cfg, a: DiT(cfg), loss=_bd3lm_loss,
                    val=_nelbo(lambda a, m, x0, g, mask: bd3lm_loss(m, x0, mask, g, a.block_sizes[0], eps=a.eps)[1]),
                    results=lambda a: _dit_results(a) | {'block_sizes': a.block_sizes}),
    **{f: Family(build=lambda cfg, a: uniform_train.build(a.family, cfg), loss=uniform_train.loss,
                 val=_nelbo(uniform_train.val_nelbo)) for f in uniform_train.FAMILIES},
    **{f: Family(build=e2d2.build, loss=e2d2.loss, val=_nelbo(e2d2.val_nelbo), add_args=e2d2.add_args,
                 results=lambda a: _dit_results(a) | e2d2.results_extra(a)) for f in e2d2.FAMILIES},
    'asarm': Family(build=lambda cfg, a: Asarm(cfg), loss=asarm_train.loss, val=asarm_train.val,
                    ppl=('val_l2r_nll', 'val_l2r_ppl'), config=AsarmConfig,
                    presets=asarm_train.PRESETS, val_repeats=1, lr=asarm_train.lr, weight_decay=0.01,
                    eval_every=1000, results=lambda a: {}),
}


@torch.no_grad()
def validate(a, fam: Family, model, val: TokenStream, mask_id, device) -> dict[str, float]:
    """The family's metrics over the first val_windows windows and val_repeats noise draws, with
    a fixed seed, so two runs are comparable."""
    model.eval()
    w = val.windows()[:a.val_windows]
    gen = torch.Generator().manual_seed(1234)
    total: dict[str, float] = {}
    n = 0
    for _ in range(fam.val_repeats):
        for i in range(0, len(w), a.batch):
            x0 = w[i:i + a.batch].to(device)
            for k, v in fam.val(a, model, x0, gen, mask_id).items():
                total[k] = total.get(k, 0.0) + v * len(x0)
            n += len(x0)
    model.train()
    return {k: v / max(1, n) for k, v in total.items()}


def parse_args(argv=None) -> tuple[argparse.Namespace, Family]:
    # The family decides the presets and some defaults, so it is read first.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--family', choices=sorted(FAMILIES), default='mdlm')
    fam = FAMILIES[pre.parse_known_args(argv)[0].family]
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--family', choices=sorted(FAMILIES), default='mdlm')
    ap.add_argument('--preset', choices=sorted(fam.presets), default='tiny')
    ap.add_argument('--data', default=None, help='folder with train.bin, val.bin, tokenizer.json')
    ap.add_argument('--out', required=True)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--time-budget', type=float, default=None, help='minutes of training')
    ap.add_argument('--max-steps', type=int, default=100000)
    ap.add_argument('--lr', type=float, default=None)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--batch', type=int, default=None)
    ap.add_argument('--seq-len', type=int, default=None)
    ap.add_argument('--ema', type=float, default=0.999)
    ap.add_argument('--eps', type=float, default=1e-3)
    ap.add_argument('--t-min', type=float, default=0.0, help='clip the noise level (BD3-LM style)')
    ap.add_argument('--t-max', type=float, default=1.0)
    ap.add_argument('--loss-weighting', choices=['elbo', 'unweighted'], default='elbo')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--block-sizes', default='4', help='bd3lm: comma-separated block sizes trained (first = default)')
    ap.add_argument('--curriculum-steps', type=int, default=0, help="duo: Gaussian curriculum for the first N steps")
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--eval-every', type=int, default=fam.eval_every)
    ap.add_argument('--val-windows', type=int, default=512, help='validation windows (x the family\'s noise draws)')
    if fam.add_args:
        fam.add_args(ap)
    a = ap.parse_args(argv)
    a.block_sizes = [int(x) for x in str(a.block_sizes).split(',') if x]
    return a, fam


def main(argv=None):
    a, fam = parse_args(argv)
    from .corpus import REPO
    data = a.data or os.path.join(REPO, '.work', 'tok')
    p = dict(fam.presets[a.preset])
    a.batch = a.batch or p.pop('batch')
    a.seq_len = a.seq_len or p.pop('seq_len')
    p.pop('batch', None), p.pop('seq_len', None)
    tok = json.load(open(os.path.join(data, 'tokenizer.json')))
    vocab = len(tok['model']['vocab'])
    mask_id = tok['model']['vocab'].get('[MASK]')  # the AS-ARM has no [MASK]
    cfg = fam.config(vocab_size=vocab, max_length=a.seq_len, **p)
    lr = a.lr or fam.lr(cfg)

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    if a.device == 'cpu':
        # DLM_THREADS: fewer threads when several runs share the cores (oversubscribed OpenMP
        # threads spin against each other and slow every run down many times over).
        torch.set_num_threads(int(os.environ.get('DLM_THREADS', 0)) or os.cpu_count() or 1)
    device = torch.device(a.device)
    model = fam.build(cfg, a).to(device)
    ema = ema_copy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=fam.weight_decay)
    train, val = TokenStream(os.path.join(data, 'train.bin'), a.seq_len), \
        TokenStream(os.path.join(data, 'val.bin'), a.seq_len)
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, 'ckpt.pt')
    step, tokens_seen, wall = 0, 0, 0.0
    if a.resume and os.path.exists(ckpt_path):
        step, tokens_seen, wall = load_checkpoint(ckpt_path, model, ema, opt, device)
        rng = np.random.default_rng(a.seed + step)
        gen.manual_seed(a.seed + step)
    budget_s = a.time_budget * 60 if a.time_budget else float('inf')
    # The step count the cosine schedule aims at: from the budget, once the step time is known.
    total_steps = a.max_steps
    use_amp = device.type == 'cuda'
    bar = tqdm(total=a.max_steps, initial=step, dynamic_ncols=True, mininterval=2)
    t0 = time.time() - wall
    history = []
    while step < total_steps and time.time() - t0 < budget_s:
        for g in opt.param_groups:
            g['lr'] = lr_at(step, total_steps, lr, a.warmup)
        x0 = train.batch(a.batch, rng).to(device, non_blocking=True)
        with (torch.autocast('cuda', dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()):
            loss, nelbo = fam.loss(a, model, x0, gen, mask_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, a.ema, step)
        step += 1
        tokens_seen += x0.numel()
        elapsed = time.time() - t0
        if step == 20 and a.time_budget:
            total_steps = min(a.max_steps, int(budget_s / (elapsed / step)))
            bar.total = total_steps
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f'{float(loss):.3f}', nelbo=f'{float(nelbo):.3f}',
                            tok_s=f'{tokens_seen / elapsed:,.0f}')
        if step % a.eval_every == 0:
            v = validate(a, fam, ema, val, mask_id, device)
            history.append({'step': step, **v})
            tqdm.write(f'step {step}: ' + ', '.join(f'{k} {x:.4f}' for k, x in v.items()))
            save_checkpoint(ckpt_path, model, ema, opt, step, tokens_seen, time.time() - t0)
    bar.close()
    wall = time.time() - t0
    final = validate(a, fam, ema, val, mask_id, device)
    v = {k: round(x, 4) for k, x in final.items()}
    save_ema_fp16(ema, a.out)
    save_checkpoint(ckpt_path, model, ema, opt, step, tokens_seen, wall)
    metric, ppl_key = fam.ppl
    results = {
        'family': a.family, 'preset': a.preset, 'config': cfg.to_dict(), 'params': count_params(ema),
        'steps': step, 'tokens': tokens_seen, 'wall_seconds': round(wall, 1),
        'device': torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu',
        'batch': a.batch, 'seq_len': a.seq_len, 'lr': lr, 'seed': a.seed, **fam.results(a),
        **v, ppl_key: round(math.exp(min(final[metric], 50)), 2),
        'train_tokens_in_corpus': int(len(train.ids)), 'history': history,
    }
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: results[k] for k in ('family', 'params', 'steps', 'wall_seconds')} | v))


if __name__ == '__main__':
    main()
