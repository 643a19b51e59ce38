"""Exports a trained run (ema.pt + results.json) to a servable model directory:
model.json, the ONNX graph(s) with dynamic batch and length, tokenizer.json.

  python -m dlm.export --run .work/runs/tiny --tokenizer .work/tok/tokenizer.json \
      --out models/zoo/tiny-mdlm --name tiny-mdlm [--fp16-weights]
"""
import json
import os
import shutil
from typing import Callable

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

from . import manifest as mf
from .cli import export_parser
from .dit import DiT, DiTConfig, count_params, padding_bias
from .train import CausalLM

OPSET = 17
# Weights with fewer elements stay fp32 in --fp16-weights graphs (norm scales, biases: tiny,
# and the most sensitive to rounding).
FP16_MIN_ELEMS = 1024


class MdlmDenoiser(torch.nn.Module):
    """tokens, attention_mask -> raw logits (SUBS is the engine's job)."""

    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit

    def forward(self, tokens, attention_mask):
        return self.dit(tokens, attn_bias=padding_bias(attention_mask))


class ArLm(torch.nn.Module):
    def __init__(self, lm: CausalLM):
        super().__init__()
        self.lm = lm

    def forward(self, tokens, attention_mask):
        return self.lm(tokens, attn_bias=padding_bias(attention_mask))


def load_ema_run(run_dir: str, build: Callable[[dict], torch.nn.Module], families=None):
    """(network with the run's fp32 EMA weights, results.json) of a training run; `build` makes
    the network from results.json; `families`: those this exporter handles."""
    with open(os.path.join(run_dir, 'results.json')) as f:
        res = json.load(f)
    if families is not None and res['family'] not in families:
        raise SystemExit(f"{run_dir}: family {res['family']!r} is not exported here (this exporter: "
                         f"{', '.join(families)})")
    model = build(res)
    sd = torch.load(os.path.join(run_dir, 'ema.pt'), map_location='cpu')
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    return model.eval(), res


def load_run(run_dir: str):
    model, res = load_ema_run(run_dir, lambda r: (CausalLM if r['family'] == 'ar' else DiT)(DiTConfig(**r['config'])),
                              ('mdlm', 'ar'))
    return model, DiTConfig(**res['config']), res


def export_graph(module, path: str, example_len=16):
    tokens = torch.zeros(2, example_len, dtype=torch.long)
    mask = torch.ones(2, example_len, dtype=torch.long)
    torch.onnx.export(module, (tokens, mask), path, opset_version=OPSET,
                      input_names=['tokens', 'attention_mask'], output_names=['logits'],
                      dynamic_axes={'tokens': {0: 'batch', 1: 'length'},
                                    'attention_mask': {0: 'batch', 1: 'length'},
                                    'logits': {0: 'batch', 1: 'length'}})


def fp16_initializers(path: str, min_elems=FP16_MIN_ELEMS):
    """Stores large float initializers as fp16, each followed by a Cast back to fp32: the file
    halves, compute stays fp32 (ONNX Runtime folds the Casts into constants when it loads)."""
    m = onnx.load(path)
    g = m.graph
    casts = []
    for init in g.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < min_elems:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(arr, name + '__fp16'))
        casts.append(helper.make_node('Cast', [name + '__fp16'], [name], to=TensorProto.FLOAT,
                                      name=name + '__cast'))
    for i, node in enumerate(casts):
        g.node.insert(i, node)
    onnx.save(m, path)


def round_like_fp16_initializers(model: torch.nn.Module, min_elems=FP16_MIN_ELEMS) -> None:
    """Rounds the model's weights in place to what fp16_initializers stores, so that a parity
    check compares the graph against the same weights."""
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() >= min_elems:
                p.copy_(p.half().float())


def write_le(path: str, arr: np.ndarray) -> None:
    """A raw little-endian array file, the layout the Node parity tests read."""
    arr.astype(arr.dtype.newbyteorder('<')).tofile(path)


def place_tokenizer(tokenizer_path: str, out: str) -> dict:
    """Creates the model directory, copies tokenizer.json into it, returns its JSON (the
    manifest reads the special tokens from it)."""
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(tokenizer_path, os.path.join(out, 'tokenizer.json'))
    with open(tokenizer_path) as f:
        return json.load(f)


def provenance(res: dict, keys) -> dict:
    """The training results the manifest records: those of `keys` the run has."""
    return {k: res[k] for k in keys if k in res}


# What a chat fine-tune's results.json (dlm.sft) adds to the provenance: what it started from and its mix.
SFT_PROVENANCE = ('init', 'sft_tokens', 'text_tokens', 'chat_examples', 'text_every', 'dev_sft', 'lr')


def add_chat(man: dict, res: dict, template_path: str | None) -> None:
    """A chat fine-tune's manifest fields: the chat template it was trained with (--chat-template)
    and the validation NELBO it started from."""
    if res.get('preset') == 'chat-sft' and res.get('history'):
        # The fine-tune validates on fewer windows than the base run did: its own step-0 number
        # is the comparable one.
        man['provenance']['val_nelbo_at_start'] = res['history'][0]['val_nelbo']
    if template_path:
        with open(template_path) as f:
            man['chat_template'] = json.load(f)


def main(argv=None):
    a = export_parser(__doc__, description=True, chat=True).parse_args(argv)
    model, cfg, res = load_run(a.run)
    tok = place_tokenizer(a.tokenizer, a.out)
    family = res['family']
    role, module = ('lm', ArLm(model)) if family == 'ar' else ('denoiser', MdlmDenoiser(model))
    graph = os.path.join(a.out, f'{role}.onnx')
    export_graph(module, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    man = {
        'name': a.name, 'family': family,
        'description': a.description or f'{family} model trained by dlm-serve (see card.md)',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': mf.special_ids(tok),
        'architecture': mf.architecture(cfg, count_params(model)),
        'time_conditioning': False,
        'graphs': {role: {'file': f'{role}.onnx', 'inputs': ['tokens', 'attention_mask'],
                          'outputs': ['logits']}},
        'samplers': ['greedy'] if family == 'ar' else mf.MDLM_SAMPLERS,
        'provenance': provenance(res, ('preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_nelbo',
                                       'val_ppl_bound', 'val_nll', 'val_ppl', 'params', 'seed') + SFT_PROVENANCE),
    }
    add_chat(man, res, a.chat_template)
    if family != 'ar':
        man['noise'] = {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3}
        man['defaults'] = {'sampler': 'confidence_topk', 'steps': 32, 'max_tokens': 64,
                           'temperature': 1.0}
    mf.write(a.out, man)
    print(json.dumps({'out': a.out, 'graph': graph, 'bytes': os.path.getsize(graph)}))


if __name__ == '__main__':
    main()
