"""Writes E2D2 parity cases: a small random E2D2 (non-zero output layer and adaLN, so every path
carries signal) exported to encoder.onnx and decoder.onnx, inputs and PyTorch's outputs as raw
little-endian files plus cases.json. test/e2d2-parity.test.ts runs them through onnxruntime-node:
  - padded batches (past/context lengths padded through past_mask/context_mask, a short row
    padded through attention_mask, a call spanning two blocks) must match PyTorch;
  - chain: the engine's path (encoder once per block, its own outputs appended to the caches,
    decoder per block against them) must reproduce PyTorch's full training forward.

  python -m dlm.e2d2_parity --out DIR [--fp16-weights | --both]
  python -m dlm.e2d2_parity --model-dir DIR --tokenizer T   (the random model as a servable model
      directory, for engine tests that need a network whose output depends on its context)
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch

from .cli import parity_parser
from .dit import DiTConfig
from .e2d2 import E2D2
from . import manifest as mf
from .e2d2_export import DecoderGraph, EncoderGraph, export_graphs, manifest
from .export import round_like_fp16_initializers, write_le


def random_model(seed=0, std=0.05) -> E2D2:
    torch.manual_seed(seed)
    m = E2D2(DiTConfig(vocab_size=97, d_model=48, n_layers=3, n_heads=4, cond_dim=24, max_length=64), dec_layers=1)
    with torch.no_grad():
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, std)
    return m.eval()


def _write(out_dir: str, name: str, arrays: dict[str, np.ndarray]) -> dict:
    spec = {}
    for k, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        write_le(os.path.join(out_dir, f'{name}.{k}.bin'), arr)
        spec[k] = {'type': 'int64' if arr.dtype == np.int64 else 'float32', 'dims': list(arr.shape)}
    return spec


def encoder_case(m: E2D2, g: torch.Generator):
    """Row 0: 8 cached positions, a 4-token block. Row 1: 4 cached positions (4 padded slots) and
    a 3-token block (1 padded). Both at their own absolute positions."""
    c, B, L, P = m.cfg, 2, 4, 8
    tokens = torch.randint(0, c.vocab_size - 1, (B, L), generator=g)
    am = torch.ones(B, L, dtype=torch.long)
    am[1, 3:] = 0
    pos = torch.stack([torch.arange(8, 12), torch.arange(4, 8)])
    pk = torch.randn(B, m.enc_layers, m.kv_heads, P, m.head_dim, generator=g)
    pv = torch.randn(B, m.enc_layers, m.kv_heads, P, m.head_dim, generator=g)
    pm = torch.ones(B, P, dtype=torch.long)
    pm[1, 4:] = 0
    bs = torch.full((B,), 4, dtype=torch.long)
    return dict(tokens=tokens, attention_mask=am, positions=pos, block_size=bs, past_keys=pk, past_values=pv, past_mask=pm)


def encoder_multiblock_case(m: E2D2, g: torch.Generator):
    """Two blocks in one call with no past (the prompt's prefill): block-causal inside the call."""
    c, B, L = m.cfg, 1, 8
    z = torch.zeros(B, m.enc_layers, m.kv_heads, 1, m.head_dim)
    return dict(tokens=torch.randint(0, c.vocab_size - 1, (B, L), generator=g), attention_mask=torch.ones(B, L, dtype=torch.long),
                positions=torch.arange(L)[None], block_size=torch.full((B,), 4, dtype=torch.long),
                past_keys=z, past_values=z.clone(), past_mask=torch.zeros(B, 1, dtype=torch.long))


def decoder_case(m: E2D2, g: torch.Generator):
    c, B, L, P = m.cfg, 2, 4, 8
    tokens = torch.randint(0, c.vocab_size, (B, L), generator=g)  # includes [MASK] = 96
    am = torch.ones(B, L, dtype=torch.long)
    am[1, 2:] = 0
    pm = torch.ones(B, P, dtype=torch.long)
    pm[0, 5:] = 0
    return dict(tokens=tokens, attention_mask=am, positions=torch.stack([torch.arange(8, 12), torch.arange(5, 9)]),
                context_keys=torch.randn(B, m.dec_layers, m.kv_heads, P, m.head_dim, generator=g),
                context_values=torch.randn(B, m.dec_layers, m.kv_heads, P, m.head_dim, generator=g), context_mask=pm)


def write_model_dir(out: str, tokenizer: str) -> None:
    """The random model served: ids 96 = [MASK], 95 = [EOS]; the tokenizer file is only there
    because a model directory has one (its ids are not this model's)."""
    os.makedirs(out, exist_ok=True)
    m = random_model(std=0.3)  # strong enough that the context changes the greedy tokens
    export_graphs(m, out)
    shutil.copyfile(tokenizer, os.path.join(out, 'tokenizer.json'))
    man = manifest('e2d2-random', m, json.load(open(tokenizer)), {'block_sizes': [4, 8]},
                   'random E2D2 weights for engine tests')
    man['special_tokens'] = {'mask': 96, 'bos': None, 'eos': 95, 'pad': None}
    mf.write(out, man)


def main(argv=None):
    ap = parity_parser(__doc__, out_required=False, run=False)
    ap.add_argument('--both', action='store_true', help='fp32 and fp16 cases, in OUT/fp32 and OUT/fp16')
    ap.add_argument('--model-dir')
    ap.add_argument('--tokenizer')
    a = ap.parse_args(argv)
    if a.model_dir:
        write_model_dir(a.model_dir, a.tokenizer)
        print(json.dumps({'model_dir': a.model_dir}))
        return
    if a.both:  # one process (torch loads once) writes OUT/fp32 and OUT/fp16
        for fp16 in (False, True):
            write_cases(os.path.join(a.out, 'fp16' if fp16 else 'fp32'), fp16)
    else:
        write_cases(a.out, a.fp16_weights)
    print(json.dumps({'out': a.out}))


def write_cases(out: str, fp16: bool) -> None:
    os.makedirs(out, exist_ok=True)
    m = random_model()
    write_model_cases(m, export_graphs(m, out, fp16), out, fp16)


def write_model_cases(m, paths: dict[str, str], out: str, fp16: bool) -> None:
    """Cases for graphs `paths` exported from m (an E2D2 or a converted Qwen3 E2D2: the token
    id vocab_size - 1 is [MASK] in both). With fp16, m's weights are rounded in place as the
    files store them."""
    os.makedirs(out, exist_ok=True)
    if fp16:  # compare against the same fp16-rounded weights that the files store
        round_like_fp16_initializers(m)
    g = torch.Generator().manual_seed(1)
    enc, dec = EncoderGraph(m).eval(), DecoderGraph(m).eval()
    index = {'graphs': {k: os.path.abspath(p) for k, p in paths.items()}, 'cases': []}
    names_enc = ['hidden', 'present_keys', 'present_values', 'present_context_keys', 'present_context_values']
    for name, role, inputs in (('enc', 'encoder', encoder_case(m, g)), ('enc2', 'encoder', encoder_multiblock_case(m, g)),
                               ('dec', 'decoder', decoder_case(m, g))):
        with torch.no_grad():
            outs = (enc if role == 'encoder' else dec)(*inputs.values())
        outs = dict(zip(names_enc, outs)) if role == 'encoder' else {'logits': outs}
        index['cases'].append({'name': name, 'role': role,
                               'inputs': _write(out, name, {k: v.numpy() for k, v in inputs.items()}),
                               'outputs': _write(out, name, {k: v.numpy().astype(np.float32) for k, v in outs.items()})})
    # The chain: clean x0 and noisy xt over 4 blocks; PyTorch's full (training) forward.
    L, bs = 16, 4
    x0 = torch.randint(0, m.cfg.vocab_size - 1, (1, L), generator=g)
    xt = torch.where(torch.rand(1, L, generator=g) < 0.5, torch.full_like(x0, m.cfg.vocab_size - 1), x0)
    with torch.no_grad():
        full = m(xt, x0, bs)
    index['chain'] = {'block_size': bs, 'length': L, 'enc_layers': m.enc_layers, 'dec_layers': m.dec_layers,
                      'kv_heads': m.kv_heads, 'head_dim': m.head_dim, 'vocab': m.cfg.vocab_size,
                      'files': _write(out, 'chain', {'x0': x0.numpy(), 'xt': xt.numpy(), 'logits': full.numpy()})}
    with open(os.path.join(out, 'cases.json'), 'w') as f:
        json.dump(index, f)


if __name__ == '__main__':
    main()
