"""Exports an AS-ARM run (ema.pt + results.json) to a servable model directory: model.json,
asarm.onnx (tokens, ranks, attention_mask -> logits; dynamic batch and length), tokenizer.json.

  python -m dlm.asarm_export --run OUTDIR --tokenizer .work/tok/tokenizer.json \
      --out models/zoo/asarm-brown --name asarm-brown [--fp16-weights]
"""
import json
import os

import torch

from . import manifest as mf
from .asarm import Asarm, AsarmConfig, count_params
from .cli import export_parser
from .export import OPSET, fp16_initializers, load_ema_run, place_tokenizer, provenance

INPUTS = ['tokens', 'ranks', 'attention_mask']


def load_run(run_dir: str):
    model, res = load_ema_run(run_dir, lambda r: Asarm(AsarmConfig(**r['config'])), ('asarm',))
    return model, model.cfg, res


def export_graph(model: Asarm, path: str, example_len=8):
    tokens = torch.zeros(2, example_len, dtype=torch.long)
    ranks = torch.arange(example_len)[None].repeat(2, 1)
    mask = torch.ones(2, example_len, dtype=torch.long)
    axes = {'batch': 0, 'length': 1}
    dyn = {n: {v: k for k, v in axes.items()} for n in INPUTS + ['logits']}
    with torch.no_grad():
        torch.onnx.export(model, (tokens, ranks, mask), path, opset_version=OPSET,
                          input_names=INPUTS, output_names=['logits'], dynamic_axes=dyn)


def manifest(name: str, cfg: AsarmConfig, n_params: int, tok: dict, res: dict, description=None):
    arch = {'d_model': cfg.d_model, 'n_layers': cfg.n_layers, 'n_heads': cfg.n_heads,
            'head_dim': cfg.head_dim, 'n_params': n_params, 'mlp_ratio': cfg.mlp_ratio,
            'backbone': 'two-stream'}
    return {
        'name': name, 'family': 'asarm',
        'description': description or 'any-subset autoregressive model trained by dlm-serve (see card.md)',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': mf.special_ids(tok), 'architecture': arch, 'time_conditioning': False,
        'graphs': {'asarm': {'file': 'asarm.onnx', 'inputs': INPUTS, 'outputs': ['logits']}},
        'samplers': ['assd'],
        'defaults': {'sampler': 'assd', 'speculative_k': 5, 'max_tokens': 64, 'temperature': 1.0},
        'provenance': provenance(res, ('preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_any_subset_nll',
                                       'val_l2r_nll', 'val_l2r_ppl', 'params', 'seed')),
    }


def main(argv=None):
    a = export_parser(__doc__, description=True).parse_args(argv)
    model, cfg, res = load_run(a.run)
    tok = place_tokenizer(a.tokenizer, a.out)
    graph = os.path.join(a.out, 'asarm.onnx')
    export_graph(model, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    mf.write(a.out, manifest(a.name, cfg, count_params(model), tok, res, a.description))
    print(json.dumps({'out': a.out, 'graph': graph, 'bytes': os.path.getsize(graph)}))


if __name__ == '__main__':
    main()
