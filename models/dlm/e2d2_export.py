"""Exports a trained E2D2 run (dlm.train --family e2d2) to a servable model directory:
model.json, encoder.onnx, decoder.onnx, tokenizer.json.

  python -m dlm.e2d2_export --run .work/runs/e2d2 --tokenizer .work/tok/tokenizer.json \\
      --out models/zoo/e2d2-brown --name e2d2-brown [--fp16-weights] [--card]
  A chat fine-tune (dlm.sft --family e2d2): add --chat-template models/data/chat_template.json.

Graphs (docs/model-format.md, section E2D2), every per-row input batch-first, opset 17 (H: the
model's key/value heads, `kv_heads`; models/dlm/e2d2_qwen3.py exports through the same classes):
  encoder  tokens, attention_mask, positions [B,L], block_size [B], past_keys, past_values
           [B,nEnc,H,P,Dh], past_mask [B,P]
           -> hidden [B,L,D], present_keys, present_values [B,nEnc,H,L,Dh],
              present_context_keys, present_context_values [B,nDec,H,L,Dh]
  decoder  tokens, attention_mask, positions [B,Lb], context_keys, context_values
           [B,nDec,H,P,Dh], context_mask [B,P] -> logits [B,Lb,V]
"""
from __future__ import annotations

import json
import os

import torch
from torch import nn

from . import manifest as mf
from .dit import NEG, DiTConfig, count_params
from .e2d2 import E2D2
from .cli import export_parser
from .export import OPSET, SFT_PROVENANCE, add_chat, fp16_initializers, load_ema_run, place_tokenizer

ENCODER_INPUTS = ['tokens', 'attention_mask', 'positions', 'block_size', 'past_keys', 'past_values', 'past_mask']
# The engine reads a graph's first output as its primary one (the logits slot); the encoder has
# no logits, so its last hidden state comes first and the caches after it.
ENCODER_OUTPUTS = ['hidden', 'present_keys', 'present_values', 'present_context_keys', 'present_context_values']
DECODER_INPUTS = ['tokens', 'attention_mask', 'positions', 'context_keys', 'context_values', 'context_mask']
DECODER_OUTPUTS = ['logits']


class EncoderGraph(nn.Module):
    """Clean tokens (one block or several, blocks aligned at multiples of block_size) against the
    encoder's cache of earlier blocks -> their encoder K/V and the decoder's context K/V."""

    def __init__(self, model: E2D2):
        super().__init__()
        self.model = model

    def forward(self, tokens, attention_mask, positions, block_size, past_keys, past_values, past_mask):
        bq = torch.div(positions, block_size[:, None], rounding_mode='floor')
        inside = (bq[:, :, None] >= bq[:, None, :]) & (attention_mask[:, None, :] > 0)
        past_ok = (past_mask[:, None, :] > 0).expand(-1, tokens.shape[1], -1)
        bias = torch.where(torch.cat([past_ok, inside], dim=2), 0.0, NEG)[:, None]
        past = [(past_keys[:, i], past_values[:, i]) for i in range(self.model.enc_layers)]
        hidden, presents = self.model.encode(tokens, positions, bias, past)
        ctx = self.model.context_kv(hidden, positions)
        return (hidden, torch.stack([k for k, _ in presents], 1), torch.stack([v for _, v in presents], 1),
                torch.stack([k for k, _ in ctx], 1), torch.stack([v for _, v in ctx], 1))


class DecoderGraph(nn.Module):
    """The noisy block against the context's K/V (every committed position) and itself."""

    def __init__(self, model: E2D2):
        super().__init__()
        self.model = model

    def forward(self, tokens, attention_mask, positions, context_keys, context_values, context_mask):
        keys_ok = torch.cat([context_mask, attention_mask], dim=1).float()
        bias = (1.0 - keys_ok)[:, None, None, :] * NEG
        ctx = [(context_keys[:, j], context_values[:, j]) for j in range(self.model.dec_layers)]
        return self.model.decode(tokens, positions, ctx, bias)


def example_encoder(model: E2D2, B=2, L=4, P=3):
    z = torch.zeros(B, model.enc_layers, model.kv_heads, P, model.head_dim)
    return (torch.zeros(B, L, dtype=torch.long), torch.ones(B, L, dtype=torch.long),
            torch.arange(P, P + L)[None].expand(B, L).contiguous(), torch.full((B,), 4, dtype=torch.long),
            z, z.clone(), torch.ones(B, P, dtype=torch.long))


def example_decoder(model: E2D2, B=2, L=4, P=3):
    z = torch.zeros(B, model.dec_layers, model.kv_heads, P, model.head_dim)
    return (torch.zeros(B, L, dtype=torch.long), torch.ones(B, L, dtype=torch.long),
            torch.arange(P, P + L)[None].expand(B, L).contiguous(), z, z.clone(), torch.ones(B, P, dtype=torch.long))


def export_graphs(model: E2D2, out_dir: str, fp16=False) -> dict[str, str]:
    """Writes encoder.onnx and decoder.onnx (P > 0 in the examples: a zero-sized past would let
    the tracer fold it away)."""
    model = model.eval()
    seq = {0: 'batch', 1: 'length'}
    cache = {0: 'batch', 3: 'length'}
    past = {0: 'batch', 3: 'past'}
    enc_axes = {'tokens': seq, 'attention_mask': seq, 'positions': seq, 'block_size': {0: 'batch'},
                'past_keys': past, 'past_values': past, 'past_mask': {0: 'batch', 1: 'past'},
                'hidden': seq, 'present_keys': cache, 'present_values': cache,
                'present_context_keys': cache, 'present_context_values': cache}
    dec_axes = {'tokens': seq, 'attention_mask': seq, 'positions': seq, 'context_keys': past,
                'context_values': past, 'context_mask': {0: 'batch', 1: 'past'}, 'logits': seq}
    paths = {'encoder': os.path.join(out_dir, 'encoder.onnx'), 'decoder': os.path.join(out_dir, 'decoder.onnx')}
    with torch.no_grad():
        torch.onnx.export(EncoderGraph(model), example_encoder(model), paths['encoder'], opset_version=OPSET,
                          input_names=ENCODER_INPUTS, output_names=ENCODER_OUTPUTS, dynamic_axes=enc_axes)
        torch.onnx.export(DecoderGraph(model), example_decoder(model), paths['decoder'], opset_version=OPSET,
                          input_names=DECODER_INPUTS, output_names=DECODER_OUTPUTS, dynamic_axes=dec_axes)
    if fp16:
        for p in paths.values():
            fp16_initializers(p)
    return paths


def load_run(run_dir: str) -> tuple[E2D2, dict]:
    return load_ema_run(run_dir, lambda r: E2D2(DiTConfig(**r['config']), r['dec_layers']), ('e2d2',))


def manifest(name: str, model: E2D2, tok: dict, res: dict, description: str | None = None,
             arch: dict | None = None) -> dict:
    """`arch`: another backbone's architecture (the converted Qwen3 one); default: the DiT's."""
    cfg = model.cfg
    sizes = res.get('block_sizes', [4])
    arch = (arch or mf.architecture(cfg, count_params(model))) | {'encoder_layers': model.enc_layers,
                                                                  'decoder_layers': model.dec_layers}
    return {
        'name': name, 'family': 'e2d2',
        'description': description or 'E2D2 (encoder-decoder block diffusion) trained by dlm-serve (see README.md)',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': mf.special_ids(tok), 'architecture': arch, 'time_conditioning': False,
        'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3},
        'block': {'size': sizes[0], 'sizes': sorted(sizes)},
        'graphs': {'encoder': {'file': 'encoder.onnx', 'inputs': ENCODER_INPUTS, 'outputs': ENCODER_OUTPUTS},
                   'decoder': {'file': 'decoder.onnx', 'inputs': DECODER_INPUTS, 'outputs': DECODER_OUTPUTS}},
        'samplers': mf.MASKED_SAMPLERS,
        'defaults': {'sampler': 'confidence_topk', 'steps': sizes[0], 'block_size': sizes[0], 'max_tokens': 64,
                     'temperature': 1.0},
        'provenance': {k: res.get(k) for k in ('preset', 'steps', 'tokens', 'wall_seconds', 'device', 'val_nelbo',
                                               'val_ppl_bound', 'params', 'seed', 't_clip', 'block_sizes',
                                               'dec_layers') + SFT_PROVENANCE if k in res},
    }


def write_card(out: str, m: dict, r: dict, sizes: dict[str, int]) -> None:
    a = m['architecture']
    lines = [
        f"# {m['name']}", '',
        'E2D2 (encoder-decoder block diffusion, Arriola et al. 2025) trained by dlm-serve on the project corpus '
        f"(Brown + King James Bible, BPE {m['vocab_size']}), on this machine's CPU: a tiny model to exercise the "
        'family end to end. Its samples are poor; the numbers below are what it is.', '',
        '| | |', '|---|---|',
        f"| parameters | {a['n_params']:,} (d_model {a['d_model']}, {a['encoder_layers']} encoder + "
        f"{a['decoder_layers']} decoder layers, {a['n_heads']} heads) |",
        f"| context | {m['max_length']} tokens; block size {m['block']['size']} (allowed {m['block']['sizes']}) |",
        f"| graphs | encoder.onnx {sizes['encoder'] / 2**20:.2f} MiB, decoder.onnx {sizes['decoder'] / 2**20:.2f} MiB "
        '(fp16 weights, fp32 compute) |',
        f"| training | {r.get('steps')} steps, {r.get('tokens', 0):,} tokens, {r.get('wall_seconds')} s on {r.get('device')} |",
        f"| batch x length | {r.get('batch')} x {r.get('seq_len')}, lr {r.get('lr')}, seed {r.get('seed')}, "
        f"t clipped to {r.get('t_clip')} |",
        f"| validation NELBO | {r.get('val_nelbo')} nats/token (perplexity bound {r.get('val_ppl_bound')}), "
        f"block size {m['block']['size']} |",
        f"| samplers | {', '.join(m['samplers'])} (default {m['defaults']['sampler']}, {m['defaults']['steps']} "
        'steps per block) |', '',
    ]
    with open(os.path.join(out, 'README.md'), 'w') as f:
        f.write('\n'.join(lines))


def main(argv=None):
    a = export_parser(__doc__, name_required=False, card=True, chat=True, description=True).parse_args(argv)
    model, res = load_run(a.run)
    tok = place_tokenizer(a.tokenizer, a.out)
    paths = export_graphs(model, a.out, a.fp16_weights)
    m = manifest(a.name or os.path.basename(os.path.normpath(a.out)), model, tok, res, a.description)
    add_chat(m, res, a.chat_template)
    mf.write(a.out, m)
    sizes = {k: os.path.getsize(p) for k, p in paths.items()}
    if a.card:
        write_card(a.out, m, res, sizes)
    print(json.dumps({'out': a.out, 'params': m['architecture']['n_params'], 'bytes': sizes}))


if __name__ == '__main__':
    main()
