"""Exports a trained BD3-LM run to a servable model directory: model.json, block.onnx (the one
graph role `block`), tokenizer.json.

  python -m dlm.export_bd3lm --run .work/runs/bd3lm --tokenizer .work/tok/tokenizer.json \
      --out models/zoo/bd3lm-brown --name bd3lm-brown [--fp16-weights]
"""
import json
import os

import torch

from . import manifest as mf
from .bd3lm import BlockDenoiser, TimedBlockDenoiser
from .dit import DiT, DiTConfig, count_params
from .cli import export_parser
from .export import OPSET, fp16_initializers, load_ema_run, place_tokenizer, provenance

INPUTS = ['tokens', 'attention_mask', 'positions', 'past_keys', 'past_values', 'past_mask']
# A time-conditioned DiT's (Duo's) kv graph reads sigma beside them (dlm.export_kv).
TIMED_INPUTS = INPUTS[:2] + ['sigma'] + INPUTS[2:]
OUTPUTS = ['logits', 'present_keys', 'present_values']


def export_block_graph(dit: DiT, path: str, timed: bool = False):
    c = dit.cfg
    B, Lb, P = 2, 4, 3  # P > 0: a zero-sized example would let the tracer fold the past away
    args = (torch.zeros(B, Lb, dtype=torch.long), torch.ones(B, Lb, dtype=torch.long),
            torch.arange(Lb)[None].expand(B, Lb).contiguous(),
            torch.zeros(B, c.n_layers, c.n_heads, P, c.head_dim), torch.zeros(B, c.n_layers, c.n_heads, P, c.head_dim),
            torch.ones(B, P, dtype=torch.long))
    dyn = {'tokens': {0: 'batch', 1: 'block'}, 'attention_mask': {0: 'batch', 1: 'block'},
           'positions': {0: 'batch', 1: 'block'}, 'past_keys': {0: 'batch', 3: 'past'},
           'past_values': {0: 'batch', 3: 'past'}, 'past_mask': {0: 'batch', 1: 'past'},
           'logits': {0: 'batch', 1: 'block'}, 'present_keys': {0: 'batch', 3: 'block'},
           'present_values': {0: 'batch', 3: 'block'}}
    module, names = BlockDenoiser(dit), INPUTS
    if timed:
        module, names = TimedBlockDenoiser(dit), TIMED_INPUTS
        args = args[:2] + (torch.full((B,), 0.5),) + args[2:]
        dyn['sigma'] = {0: 'batch'}
    torch.onnx.export(module.eval(), args, path, opset_version=OPSET, input_names=names,
                      output_names=OUTPUTS, dynamic_axes=dyn)


def load_run(run_dir: str):
    model, res = load_ema_run(run_dir, lambda r: DiT(DiTConfig(**r['config'])), ('bd3lm',))
    return model, model.cfg, res


def manifest(name: str, cfg: DiTConfig, n_params: int, tok: dict, block_sizes, res: dict, description=None):
    return {
        'name': name, 'family': 'bd3lm',
        'description': description or 'BD3-LM trained by dlm-serve (see card.md)',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': mf.special_ids(tok),
        'architecture': mf.architecture(cfg, n_params),
        'time_conditioning': False,
        'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3},
        'block': {'size': block_sizes[0], 'sizes': sorted(block_sizes)},
        'graphs': {'block': {'file': 'block.onnx', 'inputs': INPUTS, 'outputs': OUTPUTS}},
        'samplers': mf.MASKED_SAMPLERS,
        'defaults': {'sampler': 'first_hitting', 'steps': block_sizes[0], 'block_size': block_sizes[0],
                     'max_tokens': 64, 'temperature': 1.0},
        'provenance': provenance(res, ('preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_nelbo',
                                       'val_ppl_bound', 'params', 'seed', 't_clip', 'block_sizes')),
    }


def main(argv=None):
    a = export_parser(__doc__, description=True).parse_args(argv)
    model, cfg, res = load_run(a.run)
    tok = place_tokenizer(a.tokenizer, a.out)
    graph = os.path.join(a.out, 'block.onnx')
    export_block_graph(model, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    mf.write(a.out, manifest(a.name, cfg, count_params(model), tok, res.get('block_sizes', [4]), res, a.description))
    print(json.dumps({'out': a.out, 'graph': graph, 'bytes': os.path.getsize(graph)}))


if __name__ == '__main__':
    main()
