"""Exports Duo, LDDM-M and LDDM-U models to model directories (model.json, denoiser.onnx, tokenizer.json).

    python -m dlm.export_uniform --run RUN_DIR --tokenizer ../.work/tok/tokenizer.json \\
        --out zoo/duo-tiny [--fp16-weights]

RUN_DIR is what dlm.train --family duo|lddm|lddm-u wrote (ema.pt, results.json).

Graphs (docs/model-format.md), dynamic batch and length, opset 17:
  duo   denoiser: tokens, attention_mask, sigma -> logits
  lddm  denoiser: tokens, attention_mask, latent_in -> logits, latent_out   (LDDM-M: masked, no time)
  lddm-u denoiser: tokens, attention_mask, sigma, latent_in -> logits, latent_out   (LDDM-U: uniform)
With --fp16-weights large initializers are stored as fp16 and cast back at load (dlm.export).
"""
from __future__ import annotations

import json
import os

import torch
from torch import nn

from . import manifest as mf
from .dit import DiTConfig, count_params, padding_bias
from .cli import export_parser
from .export import OPSET, fp16_initializers, load_ema_run, place_tokenizer, provenance
from .lddm import Loopholing
from .uniform_train import FAMILIES, build


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


class LddmUGraph(nn.Module):
    """LDDM-U reads the noise level as Duo does, beside the carried latent."""

    def __init__(self, model: Loopholing):
        super().__init__()
        self.model = model

    def forward(self, tokens, attention_mask, sigma, latent_in):
        return self.model(tokens, sigma, latent_in, attn_bias=padding_bias(attention_mask))


def graph_of(family: str, model: nn.Module) -> tuple[nn.Module, list[str], list[str]]:
    if family == 'duo':
        return DuoGraph(model), ['tokens', 'attention_mask', 'sigma'], ['logits']
    if family == 'lddm-u':
        return LddmUGraph(model), ['tokens', 'attention_mask', 'sigma', 'latent_in'], ['logits', 'latent_out']
    return LddmGraph(model), ['tokens', 'attention_mask', 'latent_in'], ['logits', 'latent_out']


def dit_config(model: nn.Module) -> DiTConfig:
    """The backbone's config, under the latent pathway or not."""
    return (model.backbone if isinstance(model, Loopholing) else model).cfg


def example_inputs(family: str, cfg: DiTConfig, B: int = 2, L: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.vocab_size, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    if family == 'duo':
        return tokens, mask, torch.rand(B, generator=g) * 5
    if family == 'lddm-u':
        return tokens, mask, torch.rand(B, generator=g) * 5, torch.randn(B, L, cfg.d_model, generator=g)
    return tokens, mask, torch.randn(B, L, cfg.d_model, generator=g)


def export_graph(family: str, model: nn.Module, cfg: DiTConfig, path: str) -> tuple[list[str], list[str]]:
    graph, inputs, outputs = graph_of(family, model.eval())
    axes = {n: {0: 'batch', 1: 'length'} for n in ('tokens', 'attention_mask', 'logits', 'latent_in', 'latent_out')}
    axes['sigma'] = {0: 'batch'}
    with torch.no_grad():
        torch.onnx.export(graph, example_inputs(family, cfg), path, input_names=inputs, output_names=outputs,
                          dynamic_axes={k: v for k, v in axes.items() if k in inputs + outputs}, opset_version=OPSET,
                          do_constant_folding=True)
    return inputs, outputs


def manifest(family: str, name: str, cfg: DiTConfig, n_params: int, inputs: list[str], outputs: list[str],
             tokenizer_json: dict, eps: float, provenance: dict) -> dict:
    special = mf.special_ids(tokenizer_json)
    arch = mf.architecture(cfg, n_params)
    common = {'name': name, 'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size,
              'max_length': cfg.max_length, 'architecture': arch,
              'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': inputs, 'outputs': outputs}},
              'provenance': provenance}
    if family in ('duo', 'lddm-u'):
        # The uniform prior never produces [MASK]; the id stays in the vocabulary, unused.
        uniform = common | {
            'family': 'duo', 'description': 'Uniform-state diffusion (Duo) trained on the project corpus.',
            'special_tokens': special | {'mask': None}, 'time_conditioning': True,
            'noise': {'type': 'uniform', 'schedule': 'loglinear', 'eps': eps},
            'samplers': ['duo_greedy', 'duo'],
            'defaults': {'sampler': 'duo_greedy', 'steps': 32, 'temperature': 1.0, 'top_p': 0.95, 'top_k': 0},
        }
        if family == 'duo':
            return uniform
        # LDDM-U is declared as LDDM-M is: its base family plus the latent. Both Duo samplers
        # call the network at every step, so both carry the latent and both are offered.
        return uniform | {
            'description': 'Uniform-state diffusion with loopholing (LDDM-U) trained on the project corpus.',
            'loopholing': {'latent_dim': cfg.d_model},
        }
    return common | {
        'family': 'mdlm', 'description': 'Masked diffusion with loopholing (LDDM-M) trained on the project corpus.',
        'special_tokens': special, 'time_conditioning': False,
        'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': eps},
        'loopholing': {'latent_dim': cfg.d_model},
        # Only samplers that carry the latent through every step (engine/families/remdm-family.ts):
        # no ddpm_cache (the latent changes even when the tokens do not), no one-token-per-call
        # or confidence samplers.
        'samplers': ['ddpm', 'remdm'],
        'defaults': {'sampler': 'ddpm', 'steps': 64, 'temperature': 1.0, 'top_p': 1.0, 'top_k': 0},
    }


def write_card(out: str, m: dict, r: dict, graph_bytes: int) -> None:
    """The model card: what the network is, how it was trained, what it scores. Sample quality
    (Gen PPL, entropy) lives in docs/families.md's quality table, measured with the yardstick."""
    kind = {'duo': 'Duo (uniform-state diffusion)', 'lddm': 'LDDM-M (masked diffusion with loopholing)',
            'lddm-u': 'LDDM-U (uniform-state diffusion with loopholing)'}[r['family']]
    arch = m['architecture']
    lines = [
        f"# {m['name']}", '',
        f"{kind}, trained by dlm-serve on the project corpus (Brown + King James Bible, BPE {m['vocab_size']}).", '',
        '| | |', '|---|---|',
        f"| parameters | {arch['n_params']:,} (d_model {arch['d_model']}, {arch['n_layers']} layers, {arch['n_heads']} heads) |",
        f"| context | {m['max_length']} tokens |",
        f"| graph | denoiser.onnx, {graph_bytes / 2**20:.1f} MiB (fp16 weights, fp32 compute) |",
        f"| inputs / outputs | {', '.join(m['graphs']['denoiser']['inputs'])} -> {', '.join(m['graphs']['denoiser']['outputs'])} |",
        f"| training | {r.get('steps')} steps, {r.get('tokens', 0):,} tokens, {r.get('wall_seconds')} s on {r.get('device')} |",
        f"| batch x length | {r.get('batch')} x {r.get('seq_len')}, lr {r.get('lr')}, seed {r.get('seed')} |",
        f"| validation NELBO | {r.get('val_nelbo')} nats/token (perplexity bound {r.get('val_ppl_bound')}) |",
        f"| samplers | {', '.join(m['samplers'])} (default {m['defaults']['sampler']}, {m['defaults']['steps']} steps) |",
        '',
    ]
    if r['family'] == 'duo':
        lines.append('Loss: the continuous-time NELBO of the uniform process (models/dlm/duo.py); '
                     f"Gaussian curriculum steps: {r.get('curriculum_steps', 0) or 0}.")
    elif r['family'] == 'lddm-u':
        lines.append('Loss: Duo\'s uniform-state NELBO (models/dlm/duo.py) on self-conditioned logits: half of each '
                     'batch sees the detached last hidden state of a first pass at the same noise level, through '
                     'LayerNorm (zero-initialised) added to its embeddings (models/dlm/lddm.py); Gaussian curriculum '
                     f"steps: {r.get('curriculum_steps', 0) or 0}. The validation NELBO is scored with that latent.")
    else:
        lines.append('Loss: MDLM\'s masked loss on self-conditioned logits: half of each batch sees the detached '
                     'last hidden state of a first pass through LayerNorm (zero-initialised) added to its embeddings '
                     '(models/dlm/lddm.py). The validation NELBO is scored with that latent.')
    lines += ['', 'Sample quality (Gen PPL under the judge, unigram entropy) is in the quality table of dlm-serve\'s docs/families.md.', '']
    with open(os.path.join(out, 'README.md'), 'w') as f:
        f.write('\n'.join(lines))


def load(run: str) -> tuple[str, nn.Module, DiTConfig, dict]:
    model, results = load_ema_run(run, lambda r: build(r['family'], DiTConfig(**r['config'])), FAMILIES)
    return results['family'], model, DiTConfig(**results['config']), results


def main(argv=None) -> None:
    a = export_parser(__doc__, name_required=False, card=True).parse_args(argv)
    family, model, cfg, results = load(a.run)
    tok = place_tokenizer(a.tokenizer, a.out)
    graph = os.path.join(a.out, 'denoiser.onnx')
    inputs, outputs = export_graph(family, model, cfg, graph)
    if a.fp16_weights:
        fp16_initializers(graph)
    prov = provenance(results, ('family', 'preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_nelbo',
                                'val_ppl_bound', 'params', 'seed', 'curriculum_steps', 'train_tokens_in_corpus'))
    name = a.name or os.path.basename(os.path.normpath(a.out))
    m = manifest(family, name, cfg, count_params(model), inputs, outputs, tok, 1e-3, prov)
    mf.write(a.out, m)
    if a.card:
        write_card(a.out, m, results, os.path.getsize(graph))
    print(json.dumps({'out': a.out, 'family': m['family'], 'params': m['architecture']['n_params'],
                      'bytes': os.path.getsize(graph)}))


if __name__ == '__main__':
    main()
