"""Recovers a PyTorch DiT from an exported MDLM denoiser graph (export.py's output), so that a
shipped model can be fine-tuned without its training run: the zoo keeps only ONNX files.

torch 1.13's exporter keeps the module names of embeddings, biases and the adaLN linears, but
names the transposed Linear weights and the LayerNorm scales after the op that reads them
(`onnx::MatMul_1066`, `onnx::LayerNormalization_1065`). Those are matched here through the node
that reads them, whose name carries the module scope (`/dit/blocks.0/attn_qkv/MatMul`), and
every shape is checked; test/models-parity then checks the logits against ONNX Runtime.

  python -m dlm.from_onnx --model ../models/zoo/default --out ../.work/runs/default-recovered
writes a run folder (ema.pt in fp32, results.json) that export.load_run and train read.
"""
import argparse
import json
import os
import re

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .dit import DiT, DiTConfig, count_params


def _param_of_node(node_name: str, op: str) -> tuple[str, bool] | None:
    """The module parameter an exporter-named initializer stands for, from the scope in the
    name of the node that reads it (torch 1.13 names nodes /dit/<module path>/<Op>[_n]);
    True = stored transposed (a Linear weight as a MatMul's right-hand side)."""
    m = re.fullmatch(r'/dit/(.+)/(MatMul|LayerNormalization)(_\d+)?', node_name)
    if not m:
        return None
    path = m.group(1)
    if op == 'MatMul':
        # A child of a Sequential is scoped with its parent's name: blocks.0/mlp/mlp.0 -> blocks.0.mlp.0
        parts = path.split('/')
        module = [parts[0]] + [p[len(prev) + 1:] if p.startswith(prev + '.') else p
                               for prev, p in zip(parts, parts[1:])]
        return '.'.join(module) + '.weight', True
    norms = {'blocks': ['norm1', 'norm2'], 'output_layer': ['norm_final']}
    which = int(m.group(3)[1:]) if m.group(3) else 0
    kind = 'blocks' if path.startswith('blocks.') else path
    if kind not in norms or which >= len(norms[kind]):
        return None
    return f'{path}.{norms[kind][which]}.weight', False


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
    graph = onnx.load(os.path.join(model_dir, man['graphs']['denoiser']['file'])).graph
    arrays = {}
    for init in graph.initializer:
        name = init.name[:-len('__fp16')] if init.name.endswith('__fp16') else init.name
        arrays[name] = numpy_helper.to_array(init).astype(np.float32)
    sd = {}

    def put(key: str, arr: np.ndarray, source: str):
        t = torch.from_numpy(arr.copy())
        if key not in target or tuple(target[key].shape) != tuple(t.shape):
            raise SystemExit(f'{source} -> {key}: shape {tuple(t.shape)} does not fit '
                             f'{tuple(target[key].shape) if key in target else "no such parameter"}')
        sd[key] = t

    for name, arr in arrays.items():
        if name.startswith('dit.'):
            put(name[len('dit.'):], arr, name)
    # The exporter names the rest after their op, and shares one initializer between parameters
    # of equal value (all-ones norms of an untrained model) through Identity nodes: follow every
    # node that reads one, through those.
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == 'Identity'}

    def source(x: str) -> str:
        while x in alias:
            x = alias[x]
        return x

    for node in graph.node:
        for x in map(source, node.input):
            if x.startswith('onnx::') and x in arrays and node.op_type in ('MatMul', 'LayerNormalization'):
                found = _param_of_node(node.name, node.op_type)
                if found is None:
                    raise SystemExit(f'{x}: read by {node.name}, which names no known parameter')
                key, transposed = found
                put(key, arrays[x].T if transposed else arrays[x], x)
    missing = sorted(set(target) - set(sd) - {'rotary_emb.inv_freq'})
    if missing:
        raise SystemExit(f'parameters not found in the graph: {missing}')
    sd.setdefault('rotary_emb.inv_freq', target['rotary_emb.inv_freq'])
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
