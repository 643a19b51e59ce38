"""Trains the AS-ARM with the any-subset objective:
  python -m dlm.asarm_train --preset tiny --out DIR [--device cuda] [--time-budget MIN]

Reuses the shared loop's pieces (token windows, warmup + cosine schedule) from dlm.train; the
step itself differs (two-stream network, random orders), so it lives here. Writes ema.pt (fp16
EMA weights), results.json, and ckpt.pt (for --resume; never shipped)."""
import argparse
import contextlib
import json
import math
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from .asarm import Asarm, AsarmConfig, asarm_loss, count_params
from .train import TokenStream, lr_at
from .train_state import ema_copy, ema_update, load_checkpoint, save_checkpoint, save_ema_fp16

PRESETS = {
    'test': dict(d_model=32, n_layers=1, n_heads=2, seq_len=32, batch=8),
    # The CPU-trained shipped model of this session (~6 minutes on 2 shared cores).
    'tiny': dict(d_model=128, n_layers=2, n_heads=4, seq_len=128, batch=16),
    # For ~8 minutes on an H100 beside the other families: ~8M parameters (16 MB in fp16).
    # The two streams double the attention rows, so it runs at about half a DiT's tokens/s.
    'shipped': dict(d_model=256, n_layers=6, n_heads=4, seq_len=128, batch=256, dropout=0.1),
}


@torch.no_grad()
def validate(model, val: TokenStream, device, batch, n_windows):
    """Any-subset NLL (fixed orders: comparable across runs) and the left-to-right NLL."""
    model.eval()
    w = val.windows()[:n_windows]
    gen = torch.Generator().manual_seed(1234)
    tot_as = tot_lr = 0.0
    n = 0
    for i in range(0, len(w), batch):
        x0 = w[i:i + batch].to(device)
        _, l_as = asarm_loss(model, x0, gen)
        L = x0.shape[1]
        ranks = torch.arange(L, device=device)[None].expand_as(x0)
        logits = model(x0, ranks).float()
        l_lr = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x0.reshape(-1))
        tot_as += float(l_as) * len(x0)
        tot_lr += float(l_lr) * len(x0)
        n += len(x0)
    model.train()
    return tot_as / max(1, n), tot_lr / max(1, n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--preset', choices=sorted(PRESETS), default='tiny')
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
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--eval-every', type=int, default=1000)
    ap.add_argument('--val-windows', type=int, default=512)
    a = ap.parse_args(argv)

    from .corpus import REPO
    data = a.data or os.path.join(REPO, '.work', 'tok')
    p = dict(PRESETS[a.preset])
    batch, seq_len = a.batch or p.pop('batch'), a.seq_len or p.pop('seq_len')
    p.pop('batch', None), p.pop('seq_len', None)
    tok = json.load(open(os.path.join(data, 'tokenizer.json')))
    cfg = AsarmConfig(vocab_size=len(tok['model']['vocab']), max_length=seq_len, **p)
    lr = a.lr or (5e-4 if cfg.d_model >= 256 else 1e-3)

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    if a.device == 'cpu':
        torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(a.device)
    model = Asarm(cfg).to(device)
    ema = ema_copy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    train = TokenStream(os.path.join(data, 'train.bin'), seq_len)
    val = TokenStream(os.path.join(data, 'val.bin'), seq_len)
    os.makedirs(a.out, exist_ok=True)
    ckpt_path = os.path.join(a.out, 'ckpt.pt')
    step, tokens_seen, wall = 0, 0, 0.0
    if a.resume and os.path.exists(ckpt_path):
        step, tokens_seen, wall = load_checkpoint(ckpt_path, model, ema, opt, device)
        rng = np.random.default_rng(a.seed + step)
        gen.manual_seed(a.seed + step)
    budget_s = a.time_budget * 60 if a.time_budget else float('inf')
    total_steps = a.max_steps
    use_amp = device.type == 'cuda'
    bar = tqdm(total=a.max_steps, initial=step, dynamic_ncols=True, mininterval=2)
    t0 = time.time() - wall
    history = []

    def save_ckpt():
        save_checkpoint(ckpt_path, model, ema, opt, step, tokens_seen, time.time() - t0)

    while step < total_steps and time.time() - t0 < budget_s:
        for g in opt.param_groups:
            g['lr'] = lr_at(step, total_steps, lr, a.warmup)
        x0 = train.batch(batch, rng).to(device, non_blocking=True)
        with (torch.autocast('cuda', dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()):
            loss, _ = asarm_loss(model, x0, gen)
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
            bar.set_postfix(loss=f'{float(loss):.3f}', tok_s=f'{tokens_seen / elapsed:,.0f}')
        if step % a.eval_every == 0:
            v_as, v_lr = validate(ema, val, device, batch, a.val_windows)
            history.append({'step': step, 'val_any_subset_nll': v_as, 'val_l2r_nll': v_lr})
            tqdm.write(f'step {step}: val any-subset nll {v_as:.4f}, left-to-right nll {v_lr:.4f}')
            save_ckpt()
    bar.close()
    wall = time.time() - t0
    v_as, v_lr = validate(ema, val, device, batch, a.val_windows)
    save_ema_fp16(ema, a.out)
    save_ckpt()
    results = {
        'family': 'asarm', 'preset': a.preset, 'config': cfg.to_dict(), 'params': count_params(ema),
        'steps': step, 'tokens': tokens_seen, 'wall_seconds': round(wall, 1),
        'device': torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu',
        'batch': batch, 'seq_len': seq_len, 'lr': lr, 'seed': a.seed,
        'val_any_subset_nll': round(v_as, 4), 'val_l2r_nll': round(v_lr, 4),
        'val_l2r_ppl': round(math.exp(min(v_lr, 50)), 2),
        'train_tokens_in_corpus': int(len(train.ids)), 'history': history,
    }
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: results[k] for k in ('family', 'params', 'steps', 'wall_seconds',
                                              'val_any_subset_nll', 'val_l2r_nll')}))


if __name__ == '__main__':
    main()
