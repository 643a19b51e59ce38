"""Writes parity cases for the BD3-LM `block` graph: every input and PyTorch's outputs as raw
little-endian files plus cases.json; test/block-parity.test.ts runs them through
onnxruntime-node. Also writes a `chain`: a clean sequence and its full block-causal logits, which
the test rebuilds block by block through the graph's own present K/V (the engine's path).

  python -m dlm.parity_bd3lm --out DIR [--run RUN] [--fp16-weights]
"""
import json
import os

import numpy as np
import torch

from .cli import parity_parser, parse_parity
from .bd3lm import BlockDenoiser, block_causal_bias
from .export import fp16_initializers, round_like_fp16_initializers, write_le
from .export_bd3lm import export_block_graph, load_run
from .parity import random_model


def _write(out_dir: str, name: str, arr: np.ndarray):
    write_le(os.path.join(out_dir, f'{name}.bin'), arr)


def cases(dit, seed=1):
    """(name, inputs) with mixed past lengths (padded through past_mask), offsets and a block
    padded through attention_mask."""
    c = dit.cfg
    g = torch.Generator().manual_seed(seed)
    out = []
    for name, B, Lb, pasts, block_len in [('single', 1, 4, [8], [4]),
                                          ('mixed', 3, 4, [8, 4, 1], [4, 4, 4]),
                                          ('padded_block', 2, 8, [5, 3], [8, 4])]:
        P = max(pasts)
        toks = torch.randint(0, c.vocab_size, (B, Lb), generator=g)
        am = torch.zeros(B, Lb, dtype=torch.long)
        pm = torch.zeros(B, P, dtype=torch.long)
        pos = torch.zeros(B, Lb, dtype=torch.long)
        for b in range(B):
            am[b, :block_len[b]] = 1
            pm[b, :pasts[b]] = 1
            pos[b] = torch.arange(pasts[b], pasts[b] + Lb)
        pk = torch.randn(B, c.n_layers, c.n_heads, P, c.head_dim, generator=g)
        pv = torch.randn(B, c.n_layers, c.n_heads, P, c.head_dim, generator=g)
        out.append((name, dict(tokens=toks, attention_mask=am, positions=pos, past_keys=pk,
                               past_values=pv, past_mask=pm)))
    return out


def write_cases(dit, graph: str, out_dir: str, fp16=False, chain_len=16, block_size=4):
    if fp16:  # compare against the same fp16-rounded weights that the file stores
        round_like_fp16_initializers(dit)
    den = BlockDenoiser(dit).eval()
    index = {'graph': os.path.abspath(graph), 'cases': []}
    for name, inp in cases(dit):
        with torch.no_grad():
            logits, pk, pv = den(**inp)
        entry = {'name': name, 'inputs': {}, 'outputs': {}}
        for k, t in inp.items():
            arr = t.numpy().astype(np.int64 if t.dtype == torch.long else np.float32)
            _write(out_dir, f'{name}.{k}', arr)
            entry['inputs'][k] = {'type': 'int64' if arr.dtype == np.int64 else 'float32', 'dims': list(arr.shape)}
        for k, t in (('logits', logits), ('present_keys', pk), ('present_values', pv)):
            _write(out_dir, f'{name}.{k}', t.numpy().astype(np.float32))
            entry['outputs'][k] = list(t.shape)
        index['cases'].append(entry)
    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, dit.cfg.vocab_size, (1, chain_len), generator=g)
    with torch.no_grad():
        full = dit(x, attn_bias=block_causal_bias(chain_len, block_size))
    _write(out_dir, 'chain.tokens', x.numpy().astype(np.int64))
    _write(out_dir, 'chain.logits', full.numpy().astype(np.float32))
    c = dit.cfg
    index['chain'] = {'length': chain_len, 'block_size': block_size, 'vocab': c.vocab_size,
                      'n_layers': c.n_layers, 'n_heads': c.n_heads, 'head_dim': c.head_dim}
    with open(os.path.join(out_dir, 'cases.json'), 'w') as f:
        json.dump(index, f)


def main(argv=None):
    a = parse_parity(parity_parser(__doc__), argv)
    dit = load_run(a.run)[0] if a.run else random_model()
    graph = os.path.join(a.out, 'block.onnx')
    export_block_graph(dit, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    write_cases(dit, graph, a.out, a.fp16_weights)
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
