"""Recovers a PyTorch DiT from an exported MDLM denoiser graph (export.py's output), so that a
shipped model can be fine-tuned without its training run: the zoo keeps only ONNX files.

torch 1.13's exporter keeps the module names of embeddings, biases and the adaLN linears, but
names the transposed Linear weights and the LayerNorm scales after the op that reads them
(`onnx::MatMul_1066`, `onnx::LayerNormalization_1065`). Those are matched here by position in
the graph's initializer list, which follows the module order of the forward pass, and every
shape is checked; test/models-parity then checks the logits against ONNX Runtime.

  python -m dlm.from_onnx --model ../models/zoo/default --out ../.work/runs/default-recovered
writes a run folder (ema.pt in fp32, results.json) that export.load_run and train read.
"""
import argparse
import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .dit import DiT, DiTConfig, count_params


def _initializers(graph_path: str) -> list[tuple[str, np.ndarray]]:
    """(name without the fp16 suffix, fp32 array) in the graph's order."""
    m = onnx.load(graph_path)
    out = []
    for init in m.graph.initializer:
        name = init.name[:-len('__fp16')] if init.name.endswith('__fp16') else init.name
        out.append((name, numpy_helper.to_array(init).astype(np.float32)))
    return out


def _anonymous_order(n_layers: int) -> list[tuple[str, bool]]:
    """The module parameters the exporter renames, in forward order; True = stored transposed
    (a Linear weight becomes a MatMul's right-hand side)."""
    names = []
    for i in range(n_layers):
        b = f'blocks.{i}.'
        names += [(b + 'norm1.weight', False), (b + 'attn_qkv.weight', True),
                  (b + 'attn_out.weight', True), (b + 'norm2.weight', False),
                  (b + 'mlp.0.weight', True), (b + 'mlp.2.weight', True)]
    return names + [('output_layer.norm_final.weight', False), ('output_layer.linear.weight', True)]


def recover(model_dir: str) -> tuple[DiT, dict]:
    man = json.load(open(os.path.join(model_dir, 'model.json')))
    if man.get('family') != 'mdlm':
        raise SystemExit(f'{model_dir}: family {man.get("family")!r}; only MDLM denoisers are recovered')
    arch = man['architecture']
    cfg = DiTConfig(vocab_size=man['vocab_size'], d_model=arch['d_model'], n_layers=arch['n_layers'],
                    n_heads=arch['n_heads'], cond_dim=arch['cond_dim'], max_length=man['max_length'],
                    mlp_ratio=arch['mlp_ratio'])
    model = DiT(cfg)
    target = model.state_dict()
    sd = {}
    anon = iter(_anonymous_order(cfg.n_layers))
    for name, arr in _initializers(os.path.join(model_dir, man['graphs']['denoiser']['file'])):
        if name.startswith('dit.'):
            key, transposed = name[len('dit.'):], False
        elif name.startswith('onnx::'):
            try:
                key, transposed = next(anon)
            except StopIteration:
                raise SystemExit(f'unexpected extra initializer {name}') from None
        else:
            raise SystemExit(f'unexpected initializer {name}')
        t = torch.from_numpy(arr.T.copy() if transposed else arr)
        if key not in target or tuple(target[key].shape) != tuple(t.shape):
            raise SystemExit(f'{name} -> {key}: shape {tuple(t.shape)} does not fit '
                             f'{tuple(target[key].shape) if key in target else "no such parameter"}')
        sd[key] = t
    missing = sorted(set(target) - set(sd))
    if missing:
        raise SystemExit(f'parameters not found in the graph: {missing}')
    model.load_state_dict(sd)
    return model.eval(), man


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, help='model directory (model.json, denoiser.onnx)')
    ap.add_argument('--out', required=True, help='run folder to write (ema.pt, results.json)')
    a = ap.parse_args(argv)
    model, man = recover(a.model)
    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, 'ema.pt'))
    res = {'family': 'mdlm', 'config': model.cfg.to_dict(), 'params': count_params(model),
           'recovered_from': os.path.abspath(a.model), 'provenance': man.get('provenance', {})}
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(res, f, indent=1)
    print(json.dumps({'out': a.out, 'params': res['params']}))


if __name__ == '__main__':
    main()
