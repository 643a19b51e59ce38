"""Parity cases for the Duo, LDDM-M and LDDM-U graphs (test/duo-parity.test.ts reads them).

  python -m dlm.parity_uniform --out DIR [--fp16-weights] [--duo-run RUN] [--lddm-run RUN] [--lddmu-run RUN]

Builds small random Duo, LDDM-M and LDDM-U models (every zero-initialised weight made random, the
latent LayerNorm included, so every path carries signal), exports them with
dlm.export_uniform, and writes inputs and PyTorch outputs as raw little-endian files plus
cases.json. Cases cover several batch sizes and lengths and a padded batch whose padded row
must equal that row run alone. --duo-run / --lddm-run / --lddmu-run check a trained run (dlm.train's
ema.pt) instead of a random model; --fp16-weights stores the weights as the shipped models
do, and the PyTorch side uses the same fp16-rounded weights.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from .cli import parity_parser, parse_parity
from .dit import DiTConfig
from .export import fp16_initializers, round_like_fp16_initializers
from .export_uniform import dit_config, export_graph, graph_of, load
from .uniform_train import FAMILIES, build


def random_model(family: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = DiTConfig(vocab_size=61, d_model=32, n_layers=2, n_heads=4, cond_dim=16, max_length=64)
    m = build(family, cfg)
    with torch.no_grad():
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    return m.eval()


def cases(family: str, vocab: int, dim: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)

    def extras(b: int, L: int) -> tuple[torch.Tensor, ...]:
        """The graph's inputs after tokens and attention_mask: sigma [B] and/or latent [B, L, D]."""
        sigma = (torch.rand(b, generator=g) * 7,) if family in ('duo', 'lddm-u') else ()
        latent = (torch.randn(b, L, dim, generator=g) * 2,) if family in ('lddm', 'lddm-u') else ()
        return sigma + latent

    def row_alone(x: torch.Tensor, L: int) -> torch.Tensor:
        """Row 1 of a batch input, cut to L positions where it has a length axis."""
        return x[1:2].clone() if x.dim() == 1 else x[1:2, :L].clone()

    out = []
    for b, L in [(1, 5), (3, 17), (2, 40)]:
        out.append((torch.randint(0, vocab, (b, L), generator=g), torch.ones(b, L, dtype=torch.long), *extras(b, L)))
    toks = torch.randint(0, vocab, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 4:] = 0
    x = extras(2, 9)
    out.append((toks, mask, *x))
    out.append((toks[1:, :4].clone(), torch.ones(1, 4, dtype=torch.long), *(row_alone(t, 4) for t in x)))
    return out


def write(family: str, out_dir: str, run: str | None = None, fp16: bool = False) -> dict:
    model = load(run)[1] if run else random_model(family)
    cfg = dit_config(model)
    graph_path = os.path.join(out_dir, f'{family}.onnx')
    inputs, outputs = export_graph(family, model, cfg, graph_path)
    if fp16:  # compare against the same fp16-rounded weights that the file stores
        fp16_initializers(graph_path)
        round_like_fp16_initializers(model)
    graph = graph_of(family, model)[0].eval()
    entry = {'graph': os.path.abspath(graph_path), 'inputs': inputs, 'outputs': outputs, 'cases': []}
    for i, args in enumerate(cases(family, cfg.vocab_size, cfg.d_model)):
        with torch.no_grad():
            res = graph(*args)
        res = res if isinstance(res, tuple) else (res,)
        name = f'{family}{i}'
        shapes = {}
        for n, t in list(zip(inputs, args)) + list(zip(outputs, res)):
            arr = t.numpy()
            arr = arr.astype('<i8' if arr.dtype == np.int64 else '<f4')
            arr.tofile(os.path.join(out_dir, f'{name}.{n}.bin'))
            shapes[n] = list(arr.shape)
        entry['cases'].append({'name': name, 'shapes': shapes})
    return entry


def main(argv=None) -> None:
    ap = parity_parser(__doc__, run=False)
    ap.add_argument('--duo-run', default=None, help='a trained Duo run (ema.pt) instead of a random model')
    ap.add_argument('--lddm-run', default=None, help='a trained LDDM run (ema.pt) instead of a random model')
    ap.add_argument('--lddmu-run', default=None, help='a trained LDDM-U run (ema.pt) instead of a random model')
    a = parse_parity(ap, argv)
    runs = {'duo': a.duo_run, 'lddm': a.lddm_run, 'lddm-u': a.lddmu_run}
    index = {f: write(f, a.out, runs[f], a.fp16_weights) for f in FAMILIES}
    with open(os.path.join(a.out, 'cases.json'), 'w') as f:
        json.dump(index, f)
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
