"""Exports Duo and LDDM models to model directories (model.json, denoiser.onnx, tokenizer.json).

    python -m dlm.export_uniform --family duo --weights OUT/ema.pt --results OUT/results.json \\
        --tokenizer .work/tok/tokenizer.json --out models/zoo/duo-tiny

Graphs (docs/model-format.md), dynamic batch and length, opset 17:
  duo   denoiser: tokens, attention_mask, sigma -> logits
  lddm  denoiser: tokens, attention_mask, latent_in -> logits, latent_out   (LDDM-M: masked, no time)
Weights are stored as they were trained (fp16 state dicts load into an fp32 model).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import torch
from torch import nn

from .dit import DiT, DiTConfig, count_params, padding_bias
from .lddm import Loopholing


class DuoGraph(nn.Module):
    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit

    def forward(self, tokens, attention_mask, sigma):
        return self.dit(tokens, sigma, attn_bias=padding_bias(attention_mask))


class LddmGraph(nn.Module):
    def __init__(self, model: Loopholing):
        super().__init__()
        self.model = model

    def forward(self, tokens, attention_mask, latent_in):
        return self.model(tokens, None, latent_in, attn_bias=padding_bias(attention_mask))


def build(family: str, cfg: DiTConfig) -> nn.Module:
    """The training-time module of a family (what ema.pt holds)."""
    if family == 'duo':
        return DiT(cfg)
    if family == 'lddm':
        return Loopholing(DiT(cfg), cfg.d_model)
    raise ValueError(family)


def graph_of(family: str, model: nn.Module) -> tuple[nn.Module, list[str], list[str]]:
    if family == 'duo':
        return DuoGraph(model), ['tokens', 'attention_mask', 'sigma'], ['logits']
    return LddmGraph(model), ['tokens', 'attention_mask', 'latent_in'], ['logits', 'latent_out']


def example_inputs(family: str, cfg: DiTConfig, B: int = 2, L: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.vocab_size, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    if family == 'duo':
        return tokens, mask, torch.rand(B, generator=g) * 5
    return tokens, mask, torch.randn(B, L, cfg.d_model, generator=g)


def export_graph(family: str, model: nn.Module, cfg: DiTConfig, path: str) -> tuple[list[str], list[str]]:
    graph, inputs, outputs = graph_of(family, model.eval())
    axes = {n: {0: 'batch', 1: 'length'} for n in ('tokens', 'attention_mask', 'logits', 'latent_in', 'latent_out')}
    axes['sigma'] = {0: 'batch'}
    with torch.no_grad():
        torch.onnx.export(graph, example_inputs(family, cfg), path, input_names=inputs, output_names=outputs,
                          dynamic_axes={k: v for k, v in axes.items() if k in inputs + outputs}, opset_version=17,
                          do_constant_folding=True)
    return inputs, outputs


def special_ids(tokenizer_json: dict) -> dict:
    vocab = tokenizer_json['model']['vocab']
    ids = {t['content']: t['id'] for t in tokenizer_json.get('added_tokens', [])}
    get = lambda name: ids.get(name, vocab.get(name))  # noqa: E731
    return {'mask': get('[MASK]'), 'bos': get('[BOS]'), 'eos': get('[EOS]'), 'pad': get('[PAD]')}


def manifest(family: str, name: str, cfg: DiTConfig, n_params: int, inputs: list[str], outputs: list[str],
             tokenizer_json: dict, eps: float, provenance: dict) -> dict:
    special = special_ids(tokenizer_json)
    arch = {'d_model': cfg.d_model, 'n_layers': cfg.n_layers, 'n_heads': cfg.n_heads, 'head_dim': cfg.head_dim,
            'n_params': n_params, 'cond_dim': cfg.cond_dim}
    common = {'format': 'dlm-serve.model/1', 'name': name, 'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size,
              'max_length': cfg.max_length, 'architecture': arch,
              'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': inputs, 'outputs': outputs}},
              'provenance': provenance}
    if family == 'duo':
        # The uniform prior never produces [MASK]; the id stays in the vocabulary, unused.
        return common | {
            'family': 'duo', 'description': 'Uniform-state diffusion (Duo) trained on the project corpus.',
            'special_tokens': special | {'mask': None}, 'time_conditioning': True,
            'noise': {'type': 'uniform', 'schedule': 'loglinear', 'eps': eps},
            'samplers': ['duo_greedy', 'duo'],
            'defaults': {'sampler': 'duo_greedy', 'steps': 32, 'temperature': 1.0, 'top_p': 0.95, 'top_k': 0},
        }
    return common | {
        'family': 'mdlm', 'description': 'Masked diffusion with loopholing (LDDM-M) trained on the project corpus.',
        'special_tokens': special, 'time_conditioning': False,
        'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': eps},
        'loopholing': {'latent_dim': cfg.d_model},
        # No ddpm_cache: the latent changes every step even when the tokens do not.
        'samplers': ['ddpm', 'remdm'],
        'defaults': {'sampler': 'ddpm', 'steps': 64, 'temperature': 1.0, 'top_p': 1.0, 'top_k': 0},
    }


def load(family: str, weights: str, results: dict) -> tuple[nn.Module, DiTConfig]:
    cfg = DiTConfig(**results['config'])
    model = build(family, cfg)
    sd = torch.load(weights, map_location='cpu')
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    return model.eval(), cfg


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--family', choices=['duo', 'lddm'], required=True)
    ap.add_argument('--weights', required=True, help='EMA state dict (ema.pt)')
    ap.add_argument('--results', required=True, help='results.json of the training run')
    ap.add_argument('--tokenizer', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--name', default=None)
    a = ap.parse_args(argv)
    results = json.load(open(a.results))
    model, cfg = load(a.family, a.weights, results)
    os.makedirs(a.out, exist_ok=True)
    inputs, outputs = export_graph(a.family, model, cfg, os.path.join(a.out, 'denoiser.onnx'))
    shutil.copyfile(a.tokenizer, os.path.join(a.out, 'tokenizer.json'))
    tok = json.load(open(a.tokenizer))
    prov = {k: results.get(k) for k in ('family', 'preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_nelbo', 'val_ppl_bound', 'seed')}
    name = a.name or os.path.basename(os.path.normpath(a.out))
    m = manifest(a.family, name, cfg, count_params(model), inputs, outputs, tok, results.get('eps', 1e-3), prov)
    with open(os.path.join(a.out, 'model.json'), 'w') as f:
        json.dump(m, f, indent=1)
    print(f'wrote {a.out}: {m["family"]}, {m["architecture"]["n_params"]:,} parameters')


if __name__ == '__main__':
    main()
