"""A small random AS-ARM exported to ONNX, with PyTorch's logits on a few inputs for the parity
test (test/asarm-parity.test.ts) and a tiny one for the ASSD exactness test.

  python -m dlm.asarm_parity --out DIR [--vocab 97 --d-model 48 --layers 2] [--fp16-weights]
  python -m dlm.asarm_parity --out DIR --run RUN_DIR [--fp16-weights]   (a trained run's EMA weights)
  python -m dlm.asarm_parity --out DIR --xlnet [--fp16-weights]          (the XLNet graph, dlm.asarm_xlnet)

Writes DIR/asarm.onnx, DIR/model.json (family asarm), and parity cases as raw little-endian
files with an index (cases.json)."""
import json
import os

import numpy as np
import torch

from . import manifest as mf
from .asarm import Asarm, AsarmConfig, count_params
from .cli import parity_parser, parse_parity
from .asarm_export import INPUTS, export_graph, load_run
from .export import fp16_initializers, round_like_fp16_initializers, write_le


def random_model(vocab, d_model, layers, heads, max_length, scale, seed=0) -> Asarm:
    torch.manual_seed(seed)
    m = Asarm(AsarmConfig(vocab_size=vocab, d_model=d_model, n_layers=layers, n_heads=heads,
                          max_length=max_length))
    with torch.no_grad():  # larger weights than training's init, so conditionals differ sharply
        for name, p in m.named_parameters():
            if p.dim() >= 1 and 'ln' not in name:
                p.normal_(0, scale)
    return m.eval()


def random_xlnet(vocab, d_model, layers, heads, scale, seed=0):
    from .asarm_xlnet import XLNetAsarm, XLNetConfig
    torch.manual_seed(seed)
    m = XLNetAsarm(XLNetConfig(vocab_size=vocab, d_model=d_model, n_layer=layers, n_head=heads,
                               d_head=d_model // heads, d_inner=2 * d_model))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'layer_norm' not in name:
                p.normal_(0, scale)
    return m.eval()


def cases(vocab: int, L: int, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, n in [(1, min(5, L)), (3, min(11, L)), (2, L)]:
        toks = torch.randint(0, vocab, (b, n), generator=g)
        ranks = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
        ranks[:, : n // 3] = 0  # a shared-rank context, as the prompt is
        out.append((toks, ranks, torch.ones(b, n, dtype=torch.long)))
    # Padded batch: row 1 has 4 real positions; it must equal row 1 run alone (next case).
    toks = torch.randint(0, vocab, (2, 9), generator=g)
    ranks = torch.stack([torch.randperm(9, generator=g) for _ in range(2)])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 4:] = 0
    out.append((toks, ranks, mask))
    out.append((toks[1:, :4].clone(), ranks[1:, :4].clone(), torch.ones(1, 4, dtype=torch.long)))
    return out


def write_cases(model: Asarm, out_dir: str, fp16: bool):
    if fp16:  # compare against the same fp16-rounded weights the file stores
        round_like_fp16_initializers(model)
    index = {'graph': os.path.abspath(os.path.join(out_dir, 'asarm.onnx')), 'cases': []}
    for i, (toks, ranks, mask) in enumerate(cases(model.cfg.vocab_size, getattr(model.cfg, 'max_length', 32))):
        with torch.no_grad():
            logits = model(toks, ranks, mask).numpy().astype(np.float32)
        for name, arr in (('tokens', toks.numpy().astype(np.int64)), ('ranks', ranks.numpy().astype(np.int64)),
                          ('attention_mask', mask.numpy().astype(np.int64)), ('logits', logits)):
            write_le(os.path.join(out_dir, f'case{i}.{name}.bin'), arr)
        index['cases'].append({'name': f'case{i}', 'shape': list(toks.shape), 'logits_shape': list(logits.shape)})
    with open(os.path.join(out_dir, 'cases.json'), 'w') as f:
        json.dump(index, f)


def main(argv=None):
    ap = parity_parser(__doc__)
    ap.add_argument('--vocab', type=int, default=97)
    ap.add_argument('--d-model', type=int, default=48)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--max-length', type=int, default=32)
    ap.add_argument('--scale', type=float, default=0.3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--xlnet', action='store_true', help='the XLNet graph of dlm.asarm_xlnet, random weights')
    a = parse_parity(ap, argv)
    if a.xlnet:
        from .asarm_xlnet import export_graph as export_xlnet
        model = random_xlnet(a.vocab, a.d_model, a.layers, a.heads, a.scale, a.seed)
        graph = os.path.join(a.out, 'asarm.onnx')
        export_xlnet(model, graph)
        if a.fp16_weights:
            fp16_initializers(graph)
        write_cases(model, a.out, a.fp16_weights)
        print(json.dumps({'out': a.out}))
        return
    if a.run:
        model = load_run(a.run)[0]
    else:
        model = random_model(a.vocab, a.d_model, a.layers, a.heads, a.max_length, a.scale, a.seed)
    graph = os.path.join(a.out, 'asarm.onnx')
    export_graph(model, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    write_cases(model, a.out, a.fp16_weights)
    cfg = model.cfg
    mf.write(a.out, {
        'name': 'asarm-random', 'family': 'asarm', 'description': 'random-weight AS-ARM for tests',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': {'mask': None, 'bos': None, 'eos': None, 'pad': None},
        'architecture': {'d_model': cfg.d_model, 'n_layers': cfg.n_layers, 'n_heads': cfg.n_heads,
                         'head_dim': cfg.head_dim, 'n_params': count_params(model)},
        'graphs': {'asarm': {'file': 'asarm.onnx', 'inputs': INPUTS, 'outputs': ['logits']}},
        'samplers': ['assd'], 'defaults': {'sampler': 'assd', 'speculative_k': 3},
    })
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
