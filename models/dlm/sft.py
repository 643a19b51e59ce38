"""Supervised fine-tuning for chat, as LLaDA does it, mixed with continued pre-training: of an MDLM
(`--family mdlm`, the default) or of an E2D2 block model (`--family e2d2`).

SFT batches: the prompt (chat template rendered, encode_chat.mjs) stays clean; each example draws
its own noise level t, and only response tokens are masked, each with probability (1 - eps) t.
The response ends in [EOS] and is padded with more [EOS] up to a random canvas length (LLaDA pads
with EOS and trains on it: the model learns to fill the rest of a canvas with [EOS], which is
where the engine stops). Loss: cross-entropy on masked response tokens with the NELBO weight
sigma'(t)/expm1(sigma(t)) (about 1/t), summed and divided by the number of response tokens.
Text batches: the ordinary MDLM loss on windows of plain text, so unconditional generation (Gen
PPL) does not drift; one step in `--text-every` is a text batch.

E2D2 (`--family e2d2`, from a `dlm.train --family e2d2` run): the same data, weights and mix, with
the family's own objective. Blocks are aligned at position 0 as the engine aligns them; the
encoder reads the clean sequence, so the prompt's whole blocks are committed context and its
remainder sits clean at the head of the first response block, exactly what the engine serves.
Noise: one stratified t per block, response positions only, every block holding response tokens
keeps a [MASK] (as E2D2's pre-training forces one per block), NELBO weight per position. Each step
trains one of the run's block sizes. The canvas is the block: the answer's closing [EOS] is
followed by [EOS] up to the end of its block (weighted by --pad-weight) and no further, since the
engine stops at the first [EOS] of a finished block (--canvas-max is for MDLM only). Text
batches: E2D2's pre-training loss.

CPU-friendly: fp32 by default (bf16 autocast with --bf16 where the CPU has bf16 instructions: on
this machine's AVX2-only EPYC a bf16 Linear ran at 0.16 GFLOP/s against fp32's 5, 30x slower, as
oneDNN has no native bf16 path there), a wall-clock learning-rate schedule (warmup, cosine to 10% of the
peak at the deadline), an atomic checkpoint every few minutes, and --resume.

  python -m dlm.sft --init ../.work/runs/default-recovered --chat ../.work/chat/train \
      --text ../.work/tok-default --out ../.work/runs/chat --minutes 85
"""
import argparse
import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .dit import DiT, DiTConfig, count_params, padding_bias
from .e2d2 import E2D2, block_noise, e2d2_loss
from .mdlm import loglinear_sigma, masked_nelbo
from .train import TokenStream
from .train_state import ema_copy, ema_update


class ChatExamples:
    """Prompt/response id pairs written by models/tools/encode_chat.mjs."""

    def __init__(self, prefix: str):
        self.ids = np.fromfile(prefix + '.bin', dtype='<u2').astype(np.int64)
        self.idx = np.fromfile(prefix + '.idx', dtype='<i4').reshape(-1, 3)

    def __len__(self):
        return len(self.idx)

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        off, p, r = self.idx[i]
        return self.ids[off:off + p], self.ids[off + p:off + p + r]


def sft_batch(ex: ChatExamples, rows: np.ndarray, rng: np.random.Generator, eos: int, pad: int,
              max_len: int, canvas_max: int, pad_weight: float = 1.0, align: int = 1):
    """tokens [B,L], attention mask [B,L], response weights [B,L] float: 1 on the response and
    its closing [EOS], `pad_weight` on the [EOS] padding after it, 0 elsewhere. align: each row's
    [EOS] padding goes on to a multiple of it (a block model's block size)."""
    seqs, resp = [], []
    for i in rows:
        p, r = ex.example(int(i))
        lo = len(r)
        hi = max(lo, min(canvas_max, max_len - len(p)))
        R = int(rng.integers(lo, hi + 1))
        R += -(len(p) + R) % align
        seq = np.concatenate([p, r, np.full(R - lo, eos, dtype=np.int64)])
        seqs.append(seq)
        resp.append(np.concatenate([np.zeros(len(p)), np.ones(lo), np.full(R - lo, pad_weight)]))
    L = max(len(s) for s in seqs)
    tokens = np.full((len(seqs), L), pad, dtype=np.int64)
    attn = np.zeros((len(seqs), L), dtype=np.int64)
    rmask = np.zeros((len(seqs), L), dtype=np.float32)
    for b, (s, m) in enumerate(zip(seqs, resp)):
        tokens[b, :len(s)] = s
        attn[b, :len(s)] = 1
        rmask[b, :len(s)] = m
    return torch.from_numpy(tokens), torch.from_numpy(attn), torch.from_numpy(rmask)


def sft_loss(model, tokens, attn, rmask, mask_id: int, gen: torch.Generator, eps: float, device='cpu'):
    """(loss, detached loss): LLaDA's SFT objective under MDLM's log-linear schedule. rmask holds
    each position's loss weight (0 on the prompt and padding). The noise is drawn on the CPU
    generator whatever the device, so a run's draws do not depend on where it trains."""
    B, L = tokens.shape
    t = ((torch.rand(1, generator=gen) + torch.arange(B) / B) % 1).clamp(min=1e-4)  # antithetic
    sigma = loglinear_sigma(t, eps)
    move = 1 - torch.exp(-sigma)
    masked = (torch.rand(B, L, generator=gen) < move[:, None]) & (rmask > 0)
    xt = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    w = ((1 - eps) / (1 - (1 - eps) * t) / torch.expm1(sigma))[:, None] * masked * rmask
    xt, tokens, attn, w, rmask = (x.to(device) for x in (xt, tokens, attn, w, rmask))
    return response_loss(model(xt, attn_bias=padding_bias(attn)), tokens, w, rmask, mask_id)


def response_loss(logits, tokens, w, rmask, mask_id: int):
    """(loss, detached loss): cross-entropy weighted by w ([MASK] never predicted), summed and
    divided by the number of response positions (rmask > 0)."""
    B, L = tokens.shape
    logits = logits.float()
    logits[..., mask_id] = -1e9
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1), reduction='none').view(B, L)
    loss = (nll * w).sum() / (rmask > 0).sum().clamp(min=1)
    return loss, loss.detach()


def e2d2_sft_loss(model: E2D2, tokens, rmask, mask_id: int, gen: torch.Generator, eps: float,
                  block_size: int, device='cpu', force=True):
    """(loss, detached loss): the SFT objective under E2D2's block noise (see the module's
    docstring); force=False leaves the draw alone (evaluation: the estimate stays unbiased)."""
    resp = rmask > 0
    xt, masked, t = block_noise(tokens, mask_id, block_size, gen, eps, 0.0, 1.0, force, allowed=resp)
    w = (1 - eps) / (1 - (1 - eps) * t) / torch.expm1(loglinear_sigma(t, eps)) * masked * rmask
    # No attention mask: rows are padded to whole blocks (sft_batch's align), and a later block is
    # never a key of an earlier one, so a row's batch padding is invisible to it.
    xt, tokens, w, rmask = (x.to(device) for x in (xt, tokens, w, rmask))
    return response_loss(model(xt, tokens, block_size), tokens, w, rmask, mask_id)


def text_loss(model, x0, mask_id: int, gen: torch.Generator, eps: float, device='cpu'):
    B, L = x0.shape
    t = (torch.rand(1, generator=gen) + torch.arange(B) / B) % 1
    sigma = loglinear_sigma(t, eps)
    masked = torch.rand(B, L, generator=gen) < (1 - torch.exp(-sigma))[:, None]
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    xt, x0, masked, t, sigma = (x.to(device) for x in (xt, x0, masked, t, sigma))
    return masked_nelbo(model(xt), x0, masked, t, sigma, eps, mask_id, 'elbo')


@dataclass(frozen=True)
class SftFamily:
    """What a fine-tuned family brings; the data, batching, loop, schedule, EMA, checkpoints and
    results are shared. bs is the step's block size (1: not a block model); train=False is an
    evaluation (fixed block size, no forced masks).
    build(init results.json, args) -> network; block_size(args, gen, train) -> bs;
    sft(args, model, tokens, attn, rmask, mask_id, gen, bs, train) -> (loss, shown);
    text(args, model, x0, mask_id, gen, bs, train) -> (loss, NELBO); canvas(args) -> canvas_max
    for sft_batch; results(init results.json) -> what results.json adds for the exporter."""
    build: Callable
    block_size: Callable
    sft: Callable
    text: Callable
    canvas: Callable
    results: Callable


def _e2d2_sizes(res0: dict) -> list[int]:
    return list(res0.get('block_sizes', [4]))


FAMILIES = {
    'mdlm': SftFamily(
        build=lambda res0, a: DiT(DiTConfig(**{**res0['config'], 'dropout': a.dropout})),
        block_size=lambda a, gen, train: 1,
        sft=lambda a, m, tok, attn, rm, mask_id, gen, bs, train: sft_loss(m, tok, attn, rm, mask_id, gen, a.eps, a.device),
        text=lambda a, m, x0, mask_id, gen, bs, train: text_loss(m, x0, mask_id, gen, a.eps, a.device),
        canvas=lambda a: a.canvas_max,
        results=lambda res0: {}),
    'e2d2': SftFamily(
        build=lambda res0, a: E2D2(DiTConfig(**{**res0['config'], 'dropout': a.dropout}), res0['dec_layers']),
        # One of the trained sizes per step, as dlm.train's E2D2 loss draws them; evaluation at the
        # first (the served default).
        block_size=lambda a, gen, train: a.block_sizes[int(torch.randint(len(a.block_sizes), (1,), generator=gen))]
        if train else a.block_sizes[0],
        sft=lambda a, m, tok, attn, rm, mask_id, gen, bs, train: e2d2_sft_loss(
            m, tok, rm, mask_id, gen, a.eps, bs, a.device, force=train),
        text=lambda a, m, x0, mask_id, gen, bs, train: e2d2_loss(m, x0.to(a.device), mask_id, gen, bs, eps=a.eps,
                                                                 force=train),
        canvas=lambda a: 0,
        results=lambda res0: {'block_sizes': _e2d2_sizes(res0), 'dec_layers': res0['dec_layers']}),
}


def lr_at(elapsed: float, budget: float, peak: float, warmup_s: float, floor=0.1) -> float:
    if elapsed < warmup_s:
        return peak * max(0.05, elapsed / warmup_s)
    p = min(1.0, (elapsed - warmup_s) / max(1.0, budget - warmup_s))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate(model, ex, dev_rows, text_val, mask_id, eos, pad, a, fam: SftFamily):
    """SFT loss on the dev rows and the text NELBO on validation windows, with fixed seeds."""
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    rng = np.random.default_rng(1234)
    bs = fam.block_size(a, gen, False)
    s, n = 0.0, 0
    for i in range(0, len(dev_rows), a.sft_batch):
        tok, attn, rm = sft_batch(ex, dev_rows[i:i + a.sft_batch], rng, eos, pad, a.max_len, fam.canvas(a),
                                  a.pad_weight, bs)
        with autocast(a):
            _, l = fam.sft(a, model, tok, attn, rm, mask_id, gen, bs, False)
        s += float(l)
        n += 1
    w = text_val.windows()[:a.val_windows]
    tv, m = 0.0, 0
    for i in range(0, len(w), a.text_batch):
        with autocast(a):
            _, nelbo = fam.text(a, model, w[i:i + a.text_batch], mask_id, gen, bs, False)
        tv += float(nelbo)
        m += 1
    model.train()
    return s / max(1, n), tv / max(1, m)


def autocast(a):
    if a.device.startswith('cuda'):
        return torch.autocast('cuda', dtype=torch.bfloat16)
    return torch.autocast('cpu', dtype=torch.bfloat16) if a.bf16 else contextlib.nullcontext()


def save(path, state: dict):
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--family', choices=sorted(FAMILIES), default='mdlm',
                    help='mdlm, or e2d2 (--init is then a dlm.train --family e2d2 run)')
    ap.add_argument('--init', required=True, help='run folder with ema.pt + results.json (dlm.from_onnx, dlm.train)')
    ap.add_argument('--chat', required=True, help='encode_chat.mjs output prefix')
    ap.add_argument('--text', required=True, help='folder with train.bin, val.bin (same tokenizer)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--minutes', type=float, required=True, help='wall-clock budget (the schedule ends there)')
    ap.add_argument('--max-steps', type=int, default=10**9)
    ap.add_argument('--lr', type=float, default=1e-4)
    ap.add_argument('--warmup-minutes', type=float, default=2.0)
    ap.add_argument('--sft-batch', type=int, default=32)
    ap.add_argument('--text-batch', type=int, default=12)
    ap.add_argument('--text-seq', type=int, default=256)
    ap.add_argument('--text-every', type=int, default=3, help='one step in N is a plain-text batch')
    ap.add_argument('--canvas-max', type=int, default=96,
                    help='EOS-padded response length drawn up to this (mdlm; e2d2 pads to the end of the block)')
    ap.add_argument('--max-len', type=int, default=256)
    ap.add_argument('--ema', type=float, default=0.998)
    ap.add_argument('--eps', type=float, default=1e-3)
    ap.add_argument('--dropout', type=float, default=0.0)
    ap.add_argument('--dev', type=int, default=256, help='chat examples kept out of training for monitoring')
    ap.add_argument('--val-windows', type=int, default=48)
    ap.add_argument('--eval-minutes', type=float, default=15.0)
    ap.add_argument('--ckpt-minutes', type=float, default=10.0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='cpu', help="cpu, or cuda (bf16 autocast there, as dlm.train does)")
    ap.add_argument('--pad-weight', type=float, default=1.0,
                    help='loss weight of the [EOS] padding after the closing [EOS]: below 1 teaches less '
                         'of "after [EOS] comes [EOS]", which made unconditional sampling emit only [EOS]')
    ap.add_argument('--bf16', dest='bf16', action='store_true', help='bf16 autocast (CPUs with AVX512-BF16/AMX)')
    ap.add_argument('--no-bf16', dest='bf16', action='store_false', help='fp32 (the default)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--resume', action='store_true')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    fam = FAMILIES[a.family]
    res0 = json.load(open(os.path.join(a.init, 'results.json')))
    if res0.get('family', a.family) != a.family:
        raise SystemExit(f"{a.init}: a {res0['family']!r} run, not {a.family!r} (--family)")
    a.block_sizes = _e2d2_sizes(res0)
    cfg = DiTConfig(**{**res0['config'], 'dropout': a.dropout})
    tok_json = json.load(open(os.path.join(a.text, 'tokenizer.json'))) if os.path.exists(
        os.path.join(a.text, 'tokenizer.json')) else None
    vocab = tok_json['model']['vocab'] if tok_json else None
    mask_id, eos, pad = (vocab['[MASK]'], vocab['[EOS]'], vocab['[PAD]']) if vocab else (3, 2, 0)

    model = fam.build(res0, a)
    model.load_state_dict({k: v.float() for k, v in torch.load(os.path.join(a.init, 'ema.pt'), map_location='cpu').items()})
    model.to(a.device)
    model.train()
    ema = ema_copy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.0)
    ex = ChatExamples(a.chat)
    text = TokenStream(os.path.join(a.text, 'train.bin'), a.text_seq)
    text_val = TokenStream(os.path.join(a.text, 'val.bin'), a.text_seq)
    dev_rows = np.arange(0, len(ex), max(1, len(ex) // a.dev))[:a.dev]
    train_rows = np.setdiff1d(np.arange(len(ex)), dev_rows)

    os.makedirs(a.out, exist_ok=True)
    ckpt = os.path.join(a.out, 'ckpt.pt')
    st = {'step': 0, 'sft_tokens': 0, 'text_tokens': 0, 'wall': 0.0, 'history': []}
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    if a.resume and os.path.exists(ckpt):
        ck = torch.load(ckpt, map_location=a.device)
        model.load_state_dict(ck['model'])
        ema.load_state_dict(ck['ema'])
        opt.load_state_dict(ck['opt'])
        st = ck['state']
        rng = np.random.default_rng(a.seed + st['step'])
        gen.manual_seed(a.seed + st['step'])
        print(f'resumed at step {st["step"]}, {st["wall"]:.0f} s', flush=True)
    budget = a.minutes * 60
    t0 = time.time() - st['wall']
    last_ckpt = last_eval = time.time()
    log = open(os.path.join(a.out, 'train.log'), 'a')

    def checkpoint():
        st['wall'] = time.time() - t0
        save(ckpt, {'model': model.state_dict(), 'ema': ema.state_dict(), 'opt': opt.state_dict(),
                    'state': st, 'config': cfg.to_dict()})

    if st['step'] == 0:
        d, v = evaluate(ema, ex, dev_rows, text_val, mask_id, eos, pad, a, fam)
        st['history'].append({'step': 0, 'dev_sft': round(d, 4), 'val_nelbo': round(v, 4)})
        print(json.dumps(st['history'][-1]), file=log, flush=True)
    win_t, win_tok = time.time(), 0
    while st['step'] < a.max_steps and time.time() - t0 < budget:
        elapsed = time.time() - t0
        for g in opt.param_groups:
            g['lr'] = lr_at(elapsed, budget, a.lr, a.warmup_minutes * 60)
        is_text = st['step'] % a.text_every == a.text_every - 1
        bs = fam.block_size(a, gen, True)
        with autocast(a):
            if is_text:
                x0 = text.batch(a.text_batch, rng)
                loss, shown = fam.text(a, model, x0, mask_id, gen, bs, True)
                n_tok = x0.numel()
            else:
                rows = rng.choice(train_rows, size=a.sft_batch, replace=False)
                tok, attn, rm = sft_batch(ex, rows, rng, eos, pad, a.max_len, fam.canvas(a), a.pad_weight, bs)
                loss, shown = fam.sft(a, model, tok, attn, rm, mask_id, gen, bs, True)
                n_tok = int(attn.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, a.ema, st['step'] + 1000)  # no EMA warm-up: it starts from trained weights
        st['step'] += 1
        st['text_tokens' if is_text else 'sft_tokens'] += n_tok
        win_tok += n_tok
        if st['step'] % 10 == 0:
            now = time.time()
            print(json.dumps({'step': st['step'], 'kind': 'text' if is_text else 'sft', 'loss': round(float(shown), 4),
                              'lr': round(opt.param_groups[0]['lr'], 7), 'tok_s': round(win_tok / (now - win_t)),
                              'elapsed_s': round(now - t0)}), file=log, flush=True)
            win_t, win_tok = now, 0
        if time.time() - last_eval > a.eval_minutes * 60:
            d, v = evaluate(ema, ex, dev_rows, text_val, mask_id, eos, pad, a, fam)
            st['history'].append({'step': st['step'], 'dev_sft': round(d, 4), 'val_nelbo': round(v, 4),
                                  'elapsed_s': round(time.time() - t0)})
            print(json.dumps(st['history'][-1]), file=log, flush=True)
            last_eval = time.time()
        if time.time() - last_ckpt > a.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    d, v = evaluate(ema, ex, dev_rows, text_val, mask_id, eos, pad, a, fam)
    st['history'].append({'step': st['step'], 'dev_sft': round(d, 4), 'val_nelbo': round(v, 4),
                          'elapsed_s': round(time.time() - t0)})
    print(json.dumps(st['history'][-1]), file=log, flush=True)
    torch.save({k: t.detach().float().cpu() for k, t in ema.state_dict().items()}, os.path.join(a.out, 'ema.pt'))
    results = {
        'family': a.family, 'preset': 'chat-sft', 'config': cfg.to_dict(), 'params': count_params(ema),
        **fam.results(res0),
        'init': res0.get('provenance', {}), 'steps': st['step'],
        'tokens': st['sft_tokens'] + st['text_tokens'], 'sft_tokens': st['sft_tokens'],
        'text_tokens': st['text_tokens'], 'wall_seconds': round(time.time() - t0, 1),
        'device': (torch.cuda.get_device_name(0) + ' (bf16 autocast)') if a.device.startswith('cuda') else
                  f'cpu ({a.threads} threads, bf16 autocast)' if a.bf16 else f'cpu ({a.threads} threads)',
        'pad_weight': a.pad_weight,
        'lr': a.lr, 'ema': a.ema, 'sft_batch': a.sft_batch, 'text_batch': a.text_batch,
        'text_seq': a.text_seq, 'text_every': a.text_every, 'canvas_max': a.canvas_max,
        'chat_examples': int(len(train_rows)), 'seed': a.seed,
        'val_nelbo': st['history'][-1]['val_nelbo'], 'dev_sft': st['history'][-1]['dev_sft'],
        'val_ppl_bound': round(math.exp(min(v, 50)), 2), 'history': st['history'],
    }
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: results[k] for k in ('steps', 'tokens', 'wall_seconds', 'val_nelbo', 'dev_sft')}))


if __name__ == '__main__':
    main()
