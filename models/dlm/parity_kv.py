"""Writes parity cases for the `denoiser_kv` graph (dlm.export_kv) of a small random MDLM DiT
(or, with --family duo, a Duo DiT that reads sigma): the model directory (denoiser.onnx,
denoiser_kv.onnx sharing its weights, model.json), the inputs and PyTorch's outputs as raw
little-endian files, and an index (cases.json); test/approx-kv-parity.test.ts runs them through
onnxruntime-node.

  python -m dlm.parity_kv --out DIR [--fp16-weights] [--family mdlm|duo]
"""
import argparse
import json
import os

import numpy as np
import torch

from . import manifest as mf
from .bd3lm import BlockDenoiser, TimedBlockDenoiser
from .dit import count_params
from .export import MdlmDenoiser, export_graph, fp16_initializers, round_like_fp16_initializers, write_le
from .export_bd3lm import INPUTS, TIMED_INPUTS
from .export_kv import export_kv
from .export_uniform import export_graph as export_uniform_graph
from .parity import random_model


def write_model_dir(dit, out: str, fp16: bool) -> None:
    """A minimal servable MDLM directory around a random DiT, as dlm.export writes one."""
    graph = os.path.join(out, 'denoiser.onnx')
    export_graph(MdlmDenoiser(dit).eval(), graph)
    if fp16:
        fp16_initializers(graph)
    mf.write(out, {'name': 'kv-parity', 'family': 'mdlm', 'vocab_size': dit.cfg.vocab_size,
                   'max_length': dit.cfg.max_length, 'special_tokens': {'mask': 0, 'bos': None, 'eos': None, 'pad': None},
                   'architecture': mf.architecture(dit.cfg, count_params(dit)), 'time_conditioning': False,
                   'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3},
                   'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': ['tokens', 'attention_mask'],
                                           'outputs': ['logits']}},
                   'samplers': mf.MDLM_SAMPLERS})


def write_duo_model_dir(dit, out: str, fp16: bool) -> None:
    """A minimal servable Duo directory around a random DiT, as dlm.export_uniform writes one."""
    graph = os.path.join(out, 'denoiser.onnx')
    export_uniform_graph('duo', dit.eval(), dit.cfg, graph)
    if fp16:
        fp16_initializers(graph)
    mf.write(out, {'name': 'kv-parity-duo', 'family': 'duo', 'vocab_size': dit.cfg.vocab_size,
                   'max_length': dit.cfg.max_length, 'special_tokens': {'mask': None, 'bos': None, 'eos': None, 'pad': None},
                   'architecture': mf.architecture(dit.cfg, count_params(dit)), 'time_conditioning': True,
                   'noise': {'type': 'uniform', 'schedule': 'loglinear', 'eps': 1e-3},
                   'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': ['tokens', 'attention_mask', 'sigma'],
                                           'outputs': ['logits']}},
                   'samplers': ['duo_greedy', 'duo']})


def kv_module(dit, timed: bool):
    """The kv graph's PyTorch side; a timed one (Duo) takes sigma third, as the graph does."""
    return (TimedBlockDenoiser(dit) if timed else BlockDenoiser(dit)).eval()


def kv_cases(dit, seed=3, timed=False):
    """(name, inputs) pairs: every position as a query against an empty past (padded row too),
    and a window against a past of prefix and suffix keys with one padded slot. Timed (Duo):
    each row its own sigma, the past computed at that sigma."""
    c = dit.cfg
    g = torch.Generator().manual_seed(seed)
    den = kv_module(dit, timed)
    B, L = 2, 16
    sig = (torch.tensor([0.7, 4.0]),) if timed else ()

    def call(*args):  # (tokens, attention_mask, positions, past...) with sigma where the graph takes it
        return args[:2] + sig + args[2:]

    toks = torch.randint(0, c.vocab_size, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    mask[1, 11:] = 0
    pos = torch.arange(L)[None].expand(B, L).contiguous()
    z = torch.zeros(B, c.n_layers, c.n_heads, 1, c.head_dim)
    empty = (z, z.clone(), torch.zeros(B, 1, dtype=torch.long))
    yield 'full', call(toks, mask, pos, *empty)
    with torch.no_grad():
        _, k, v = den(*call(toks, torch.ones(B, L, dtype=torch.long), pos, *empty))
    # Window 6..10 queries; past = positions 0..5 and 11..15 plus one padded slot at the end.
    keep = torch.tensor(list(range(6)) + list(range(11, 16)))
    pk = torch.cat([k[:, :, :, keep], torch.randn(B, c.n_layers, c.n_heads, 1, c.head_dim, generator=g)], 3)
    pv = torch.cat([v[:, :, :, keep], torch.randn(B, c.n_layers, c.n_heads, 1, c.head_dim, generator=g)], 3)
    pm = torch.cat([torch.ones(B, len(keep), dtype=torch.long), torch.zeros(B, 1, dtype=torch.long)], 1)
    w = slice(6, 11)
    yield 'window', call(toks[:, w].contiguous(), torch.ones(B, 5, dtype=torch.long), pos[:, w].contiguous(), pk, pv, pm)


OUT_NAMES = ['logits', 'present_keys', 'present_values']


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--fp16-weights', action='store_true')
    ap.add_argument('--family', choices=['mdlm', 'duo'], default='mdlm')
    a = ap.parse_args(argv)
    timed = a.family == 'duo'
    os.makedirs(a.out, exist_ok=True)
    dit = random_model()
    model_dir = os.path.join(a.out, 'model')
    os.makedirs(model_dir, exist_ok=True)
    (write_duo_model_dir if timed else write_model_dir)(dit, model_dir, a.fp16_weights)
    info = export_kv(model_dir)
    if a.fp16_weights:  # compare against the same fp16-rounded weights the files store
        round_like_fp16_initializers(dit)
    den = kv_module(dit, timed)
    names = TIMED_INPUTS if timed else INPUTS
    index = {'model': os.path.abspath(model_dir), 'export': info, 'cases': []}
    for name, inputs in kv_cases(dit, timed=timed):
        with torch.no_grad():
            outs = den(*inputs)
        spec_in, spec_out = {}, {}
        for n, t in zip(names, inputs):
            arr = t.numpy().astype(np.int64 if t.dtype == torch.long else np.float32)
            write_le(os.path.join(a.out, f'{name}.{n}.bin'), arr)
            spec_in[n] = {'type': 'int64' if t.dtype == torch.long else 'float32', 'dims': list(t.shape)}
        for n, t in zip(OUT_NAMES, outs):
            write_le(os.path.join(a.out, f'{name}.{n}.bin'), t.numpy().astype(np.float32))
            spec_out[n] = list(t.shape)
        index['cases'].append({'name': name, 'inputs': spec_in, 'outputs': spec_out})
    with open(os.path.join(a.out, 'cases.json'), 'w') as f:
        json.dump(index, f)
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
