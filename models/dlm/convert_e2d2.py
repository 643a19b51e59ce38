"""Converts a published E2D2 OpenWebText checkpoint (kuleshov-group/e2d2: the `e2d2-owt` models,
bash_scripts/run_train_e2d2_owt_gpt2_tokenizer.sh: a Qwen3-style encoder and decoder trained from
scratch on OpenWebText with the GPT-2 tokenizer plus [MASK], block size 4, length 1024) to a
servable `e2d2` model directory: model.json, encoder.onnx, decoder.onnx, tokenizer.json, README.md.
Users bring the files; nothing is downloaded.

  python -m dlm.convert_e2d2 --checkpoint DIR_OR_FILE --out models/zoo/e2d2-owt [--fp16-weights]

--checkpoint takes
  - a Hugging Face directory (config.json + pytorch_model.bin or model.safetensors; keys
    `backbone.encoder.model.*`, `backbone.decoder.model.*`, `backbone.{encoder,decoder}.lm_head.weight`);
  - a state-dict file (.bin / .pt / .safetensors) with those keys;
  - a Composer checkpoint (`state.model`, keys under `model.`, `_orig_mod.` when the backbone was
    compiled); --ema takes the EMA weights from its `state.algorithms` instead.
Sizes come from the tensors (layers, widths, query and key/value heads, head width); block size
and length from config.json when there is one, else --block-size / --max-length; what neither
holds (the base LM's rotary base and RMSNorm eps: Qwen/Qwen3-0.6B-Base's by default) from flags.
"""
from __future__ import annotations

import json
import os
import re

import torch

from . import manifest as mf
from .cli import converter_main
from .convert_mdlm import (CheckpointError, gpt2_special_tokens, load_state_dict,
                           read_safetensors, write_gpt2_tokenizer)
from .dit import count_params
from .e2d2_export import export_graphs, manifest
from .e2d2_qwen3 import Qwen3E2D2, Qwen3E2D2Config

# Qwen/Qwen3-0.6B-Base, the config the published run builds its layers from (its sizes are
# overridden by the run and read from the tensors here; these two are not).
QWEN3_ROPE_THETA = 1e6
QWEN3_RMS_EPS = 1e-6
# Buffers some saves carry that are not weights (attention masks, rotary tables we recompute).
_IGNORED = re.compile(r'(^|\.)(static_attention_mask|encoder_static_attention_mask|rotary_emb\.inv_freq)$')


def _composer_state(obj: dict, ema: bool) -> dict:
    state = obj['state']
    if not ema:
        return state['model']
    for name, alg in state.get('algorithms', []):
        if name == 'EMA':
            return alg['ema_model']['named_parameters_dict']
    raise CheckpointError('--ema: the Composer checkpoint has no EMA algorithm state')


def read_checkpoint(path: str, ema: bool = False) -> tuple[dict, dict]:
    """(published keys -> tensors with everything before `backbone.` stripped, config.json or {})."""
    raw = {}
    if os.path.isdir(path):
        cfg_path = os.path.join(path, 'config.json')
        raw = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
        sd = load_state_dict(path)
    elif path.endswith('.safetensors'):
        sd = read_safetensors(path)
    elif os.path.exists(path):
        try:
            sd = torch.load(path, map_location='cpu')
        except Exception as e:
            raise CheckpointError(f'{path}: cannot be read ({e})') from e
    else:
        raise CheckpointError(f'{path}: no such file or directory')
    if isinstance(sd, dict) and 'state' in sd and isinstance(sd['state'], dict):
        sd = _composer_state(sd, ema)
    elif ema:
        raise CheckpointError(f'{path}: --ema needs a Composer checkpoint (one with state.algorithms)')
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v) or _IGNORED.search(k):
            continue
        k = k.replace('_orig_mod.', '')
        i = k.find('backbone.')
        if i < 0:
            raise CheckpointError(f'checkpoint key {k!r} is not under backbone. (is this an E2D2 checkpoint?)')
        out[k[i + len('backbone.'):]] = v
    if not out:
        raise CheckpointError(f'{path}: no tensors under backbone.')
    return out, raw


def _need(sd: dict, key: str):
    if key not in sd:
        raise CheckpointError(f'checkpoint is missing key backbone.{key}')
    return sd[key]


def _layer_count(sd: dict, side: str) -> int:
    idx = {int(m.group(1)) for k in sd if (m := re.match(rf'{side}\.model\.layers\.(\d+)\.', k))}
    if not idx:
        raise CheckpointError(f'checkpoint has no backbone.{side}.model.layers.*')
    if idx != set(range(len(idx))):
        raise CheckpointError(f'backbone.{side}.model.layers are not numbered 0..{len(idx) - 1}: {sorted(idx)}')
    return len(idx)


def infer_config(sd: dict, raw: dict, block_size: int | None, max_length: int | None, rope_theta: float,
                 rms_eps: float) -> tuple[Qwen3E2D2Config, int]:
    """The architecture from the tensors, cross-checked against config.json where it has a say."""
    bb = raw.get('backbone_config') or {}
    if bb.get('use_encoder_causal_mask'):
        raise CheckpointError('config.json: backbone_config.use_encoder_causal_mask is true; this converter '
                              'serves the block-causal encoder of the e2d2-owt run')
    if bb.get('tie_encoder_decoder_weights'):
        raise CheckpointError('config.json: backbone_config.tie_encoder_decoder_weights is true (decoder = the '
                              "encoder's top layers); not the e2d2-owt layout")
    if 'ShareKV' in str(bb.get('_target_', '')):
        raise CheckpointError(f"config.json: backbone {bb['_target_']} shares the encoder's KV; not the e2d2-owt layout")
    embed = next((sd[k] for k in ('encoder.model.embed_tokens.weight', 'encoder.lm_head.weight',
                                  'decoder.lm_head.weight') if k in sd), None)
    if embed is None:
        raise CheckpointError('checkpoint is missing key backbone.encoder.model.embed_tokens.weight')
    V, D = embed.shape
    a = 'encoder.model.layers.0.self_attn.'
    Dh = _need(sd, a + 'q_norm.weight').shape[0]
    H, Hkv = _need(sd, a + 'q_proj.weight').shape[0] // Dh, _need(sd, a + 'k_proj.weight').shape[0] // Dh
    head = sd.get('decoder.lm_head.weight')
    cfg = Qwen3E2D2Config(
        vocab_size=V, d_model=D, n_heads=H, n_kv_heads=Hkv, head_dim=Dh,
        d_ff=_need(sd, 'encoder.model.layers.0.mlp.gate_proj.weight').shape[0],
        enc_layers=_layer_count(sd, 'encoder'), dec_layers=_layer_count(sd, 'decoder'),
        max_length=max_length or raw.get('length') or bb.get('max_length') or 1024,
        rope_theta=float(bb.get('rope_theta', rope_theta)), rms_eps=float(bb.get('rms_norm_eps', rms_eps)),
        tied=head is None or torch.equal(head, embed))
    for key, want in (('num_encoder_layers', cfg.enc_layers), ('num_decoder_layers', cfg.dec_layers),
                      ('hidden_size', cfg.d_model), ('intermediate_size', cfg.d_ff), ('vocab_size', cfg.vocab_size)):
        if key in bb and bb[key] != want:
            raise CheckpointError(f'config.json: backbone_config.{key} is {bb[key]} but the tensors say {want}')
    bs = block_size or raw.get('eval_block_size') or raw.get('block_size')
    if not isinstance(bs, int) or bs < 1 or cfg.max_length % bs:
        raise CheckpointError(f'block size {bs!r} is not a positive divisor of length {cfg.max_length} '
                              '(config.json block_size, or --block-size)')
    mask = raw.get('mask_token_id', (raw.get('tokenization_config') or {}).get('mask_token_id'))
    if mask is not None and mask != gpt2_special_tokens()['mask']:
        raise CheckpointError(f'config.json: mask_token_id {mask}, expected 50257 (GPT-2 + [MASK])')
    return cfg, bs


def our_state_dict(sd: dict, model: Qwen3E2D2) -> dict:
    """The published tensors under our names (`.model` dropped, the tied head folded into the
    embedding), checked key by key against the module."""
    mapped = {}
    for k, v in sd.items():
        if k in ('encoder.lm_head.weight', 'decoder.lm_head.weight'):
            if model.lm_head is not None and k == 'decoder.lm_head.weight':
                mapped['lm_head.weight'] = v
            continue  # tied: the embedding is the output layer
        mapped[k.replace('encoder.model.', 'encoder.', 1).replace('decoder.model.', 'decoder.', 1)] = v
    if 'encoder.embed_tokens.weight' not in mapped:
        mapped['encoder.embed_tokens.weight'] = sd.get('encoder.lm_head.weight', sd.get('decoder.lm_head.weight'))
    want = model.state_dict()
    mapped['rotary.inv_freq'] = want['rotary.inv_freq']  # recomputed from rope_theta
    back = lambda k: 'backbone.' + k.replace('encoder.', 'encoder.model.', 1).replace('decoder.', 'decoder.model.', 1)  # noqa: E731
    for k, v in want.items():
        if k not in mapped:
            raise CheckpointError(f'checkpoint is missing key {back(k)} (shape {tuple(v.shape)})')
        if tuple(mapped[k].shape) != tuple(v.shape):
            raise CheckpointError(f'checkpoint key {back(k)} has shape {tuple(mapped[k].shape)}, expected {tuple(v.shape)}')
    extra = sorted(set(mapped) - set(want))
    if extra:
        raise CheckpointError(f'checkpoint has keys this backbone does not: {", ".join(back(e) for e in extra[:5])}')
    return {k: mapped[k].float() for k in want}


def architecture(model: Qwen3E2D2) -> dict:
    c = model.cfg
    return {'d_model': c.d_model, 'n_layers': c.enc_layers + c.dec_layers, 'n_heads': c.n_heads,
            'n_kv_heads': c.n_kv_heads, 'head_dim': c.head_dim, 'n_params': count_params(model), 'd_ff': c.d_ff,
            'rope_theta': c.rope_theta, 'rms_eps': c.rms_eps, 'tied_embeddings': c.tied, 'backbone': 'qwen3'}


def write_card(out: str, m: dict, src: str, sizes: dict[str, int]) -> None:
    a = m['architecture']
    lines = [
        f"# {m['name']}", '',
        'E2D2 (encoder-decoder block diffusion, Arriola et al. 2025) converted by `dlm.convert_e2d2` from the '
        f'checkpoint at `{src}`: the published OpenWebText E2D2 layout (kuleshov-group/e2d2, '
        '`run_train_e2d2_owt_gpt2_tokenizer.sh`), a Qwen3-style encoder and decoder trained from scratch with the '
        "GPT-2 tokenizer plus [MASK] (id 50257; the reference names it `<|fim_middle|>`, only the id matters).", '',
        '| | |', '|---|---|',
        f"| parameters | {a['n_params']:,} (d_model {a['d_model']}, {a['encoder_layers']} encoder + {a['decoder_layers']} "
        f"decoder layers, {a['n_heads']} query / {a['n_kv_heads']} key-value heads of {a['head_dim']}, SwiGLU {a['d_ff']}) |",
        f"| context | {m['max_length']} tokens; block size {m['block']['size']} |",
        f"| graphs | encoder.onnx {sizes['encoder'] / 2**20:.1f} MiB, decoder.onnx {sizes['decoder'] / 2**20:.1f} MiB |",
        f"| samplers | {', '.join(m['samplers'])} (default {m['defaults']['sampler']}, {m['defaults']['steps']} steps per block) |",
        '', 'What dlm-serve checked: its PyTorch rewrite of the backbone against an independent dense computation of the '
        'published formulas, the cached block-by-block path against the uncached forward, and the ONNX graphs against '
        'PyTorch - on small synthetic checkpoints with the published key names (models/tests/test_convert_e2d2.py). '
        'Not checked: logits against the reference code with these weights (no transformers or published weights '
        'where this converter was written). Prompts are encoded block-causally, as training saw them; the '
        "reference's generate() encodes a multi-block prompt in one bidirectional call.", '',
    ]
    with open(os.path.join(out, 'README.md'), 'w') as f:
        f.write('\n'.join(lines))


def load(ckpt: str, block_size: int | None = None, max_length: int | None = None, rope_theta: float = QWEN3_ROPE_THETA,
         rms_eps: float = QWEN3_RMS_EPS, ema: bool = False) -> tuple[Qwen3E2D2, int, dict]:
    sd, raw = read_checkpoint(ckpt, ema)
    cfg, bs = infer_config(sd, raw, block_size, max_length, rope_theta, rms_eps)
    model = Qwen3E2D2(cfg)
    model.load_state_dict(our_state_dict(sd, model))
    return model.eval(), bs, raw


def convert(ckpt: str, out: str, name: str, fp16=False, block_size: int | None = None, max_length: int | None = None,
            rope_theta: float = QWEN3_ROPE_THETA, rms_eps: float = QWEN3_RMS_EPS, ema: bool = False,
            parity_out: str | None = None) -> Qwen3E2D2:
    model, bs, raw = load(ckpt, block_size, max_length, rope_theta, rms_eps, ema)
    tok = write_gpt2_tokenizer(out, model.cfg.vocab_size)
    paths = export_graphs(model, out, fp16)
    src = os.path.abspath(ckpt)
    m = manifest(name, model, tok, {'block_sizes': [bs]}, f'E2D2 (Qwen3 encoder-decoder, block size {bs}) converted from {src}',
                 arch=architecture(model))
    m['special_tokens'] = gpt2_special_tokens()
    # The run's LinearNoise: alpha_t = 1 - t, the log-linear schedule with eps 0.
    m['noise'] = {'type': 'masked', 'schedule': 'loglinear', 'eps': 0.0}
    m['defaults']['max_tokens'] = 128
    m['provenance'] = {'converted_from': src, 'config': raw, 'converter': 'dlm.convert_e2d2'}
    mf.write(out, m)
    write_card(out, m, src, {k: os.path.getsize(p) for k, p in paths.items()})
    if parity_out:
        from .e2d2_parity import write_model_cases
        write_model_cases(model, paths, parity_out, fp16)
    return model


def _args(ap) -> None:
    ap.add_argument('--block-size', type=int, default=None, help='when config.json does not give it')
    ap.add_argument('--max-length', type=int, default=None, help='when config.json does not give it (else 1024)')
    ap.add_argument('--rope-theta', type=float, default=QWEN3_ROPE_THETA, help="the base LM's rotary base")
    ap.add_argument('--rms-eps', type=float, default=QWEN3_RMS_EPS, help="the base LM's RMSNorm eps")
    ap.add_argument('--ema', action='store_true', help="a Composer checkpoint's EMA weights")
    ap.add_argument('--parity-out', default=None, help='also write ONNX-vs-PyTorch parity cases (tests)')


def main(argv=None):
    converter_main(convert, 'e2d2-owt', __doc__, argv, _args)


if __name__ == '__main__':
    main()
