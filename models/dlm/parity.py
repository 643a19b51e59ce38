"""Writes parity cases for an exported graph: inputs and PyTorch's logits as raw little-endian
files plus an index (cases.json); test/models-parity.test.ts runs the same inputs through
onnxruntime-node and compares. With --random it first builds and exports a small random model
(non-zero output layer, so logits carry signal), which is what CI uses; with --run it checks a
trained run against its export; with --recover MODEL_DIR it checks the PyTorch model recovered
from a shipped graph (from_onnx.py) against that graph itself."""
import json
import os

import numpy as np
import torch

from .cli import parity_parser, parse_parity
from .dit import DiT, DiTConfig, padding_bias
from .export import MdlmDenoiser, export_graph, fp16_initializers, load_run, round_like_fp16_initializers, write_le


def random_model(seed=0) -> DiT:
    torch.manual_seed(seed)
    m = DiT(DiTConfig(vocab_size=97, d_model=48, n_layers=2, n_heads=4, cond_dim=24, max_length=64))
    with torch.no_grad():  # the reference zero-inits these; random values exercise every path
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return m.eval()


def cases(vocab: int, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, L in [(1, 5), (3, 17), (2, 64)]:
        toks = torch.randint(0, vocab, (b, L), generator=g)
        out.append((toks, torch.ones(b, L, dtype=torch.long)))
    # Padded batch: row 1 has 4 real tokens then padding; it must equal row 1 run alone.
    toks = torch.randint(0, vocab, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 4:] = 0
    out.append((toks, mask))
    out.append((toks[1:, :4].clone(), torch.ones(1, 4, dtype=torch.long)))
    return out


def write_cases(model: DiT, graph: str, out_dir: str, fp16=False):
    if fp16:  # compare against the same fp16-rounded weights that the file stores
        round_like_fp16_initializers(model)
    index = {'graph': os.path.abspath(graph), 'cases': []}
    den = MdlmDenoiser(model).eval()
    for i, (toks, mask) in enumerate(cases(model.cfg.vocab_size)):
        with torch.no_grad():
            logits = den(toks, mask).numpy().astype(np.float32)
        for name, arr in (('tokens', toks.numpy().astype(np.int64)),
                          ('attention_mask', mask.numpy().astype(np.int64)), ('logits', logits)):
            write_le(os.path.join(out_dir, f'case{i}.{name}.bin'), arr)
        index['cases'].append({'name': f'case{i}', 'shape': list(toks.shape),
                               'logits_shape': list(logits.shape)})
    with open(os.path.join(out_dir, 'cases.json'), 'w') as f:
        json.dump(index, f)


def main(argv=None):
    ap = parity_parser(__doc__)
    ap.add_argument('--recover', default=None, help='a shipped MDLM model directory')
    a = parse_parity(ap, argv)
    if a.recover:
        from .from_onnx import recover
        model, man = recover(a.recover)
        write_cases(model, os.path.join(a.recover, man['graphs']['denoiser']['file']), a.out)
        print(json.dumps({'out': a.out}))
        return
    model = load_run(a.run)[0] if a.run else random_model()
    graph = os.path.join(a.out, 'denoiser.onnx')
    export_graph(MdlmDenoiser(model).eval(), graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    write_cases(model, graph, a.out, a.fp16_weights)
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
