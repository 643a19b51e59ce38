"""Converts a published MDLM checkpoint in the Hugging Face layout (kuleshov-group/mdlm-owt:
config.json + model.safetensors or pytorch_model.bin, keys under `backbone.`) to a servable
model directory with the GPT-2 tokenizer. Users bring the files; nothing is downloaded.

  python -m dlm.convert_mdlm --checkpoint DIR --out models/zoo/mdlm-owt [--fp16-weights]
"""
import json
import os

import numpy as np
import torch

from . import manifest as mf
from .cli import converter_main
from .dit import DiT, DiTConfig, count_params
from .export import MdlmDenoiser, export_graph, fp16_initializers
from .gpt2_tokenizer import build as gpt2_tokenizer

_ST_DTYPES = {'F32': np.float32, 'F16': np.float16, 'BF16': None, 'I64': np.int64}


class CheckpointError(SystemExit):
    pass


def read_safetensors(path: str) -> dict:
    """The safetensors layout (an 8-byte header size, a JSON header, raw little-endian data);
    Debian has no safetensors package, and the format is this small."""
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == '__metadata__':
                continue
            start, end = info['data_offsets']
            f.seek(base + start)
            raw = f.read(end - start)
            if len(raw) != end - start:
                raise CheckpointError(f'{path}: tensor {name} is truncated ({len(raw)} of {end - start} bytes)')
            if info['dtype'] == 'BF16':
                u16 = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
                arr = u16.view(np.float32)
            elif info['dtype'] in _ST_DTYPES:
                arr = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[info['dtype']]).newbyteorder('<'))
            else:
                raise CheckpointError(f'{path}: tensor {name} has dtype {info["dtype"]}, which this converter does not read')
            out[name] = torch.from_numpy(arr.copy().reshape(info['shape']))
    return out


def load_state_dict(ckpt_dir: str) -> dict:
    st = os.path.join(ckpt_dir, 'model.safetensors')
    pt = os.path.join(ckpt_dir, 'pytorch_model.bin')
    if os.path.exists(st):
        return read_safetensors(st)
    if os.path.exists(pt):
        try:
            return torch.load(pt, map_location='cpu')
        except Exception as e:  # a truncated zip or pickle
            raise CheckpointError(f'{pt}: cannot be read ({e})') from e
    raise CheckpointError(f'{ckpt_dir}: no model.safetensors or pytorch_model.bin')


def config_from(ckpt_dir: str) -> tuple[DiTConfig, dict]:
    path = os.path.join(ckpt_dir, 'config.json')
    if not os.path.exists(path):
        raise CheckpointError(f'{ckpt_dir}: no config.json')
    c = json.load(open(path))
    try:
        cfg = DiTConfig(vocab_size=c['vocab_size'], d_model=c['hidden_dim'], n_layers=c['n_blocks'],
                        n_heads=c['n_heads'], cond_dim=c['cond_dim'], max_length=c['model_length'])
    except KeyError as e:
        raise CheckpointError(f'{path}: missing key {e.args[0]!r} (expected the mdlm-owt config)') from e
    return cfg, c


def checked_state_dict(sd: dict, model: DiT, prefix='backbone.') -> dict:
    """The checkpoint's tensors under our names, or an error naming the first bad key."""
    sd = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    want = model.state_dict()
    for k, v in want.items():
        if k not in sd:
            if k == 'rotary_emb.inv_freq':  # a buffer some exports leave out; it is recomputed
                sd[k] = v
                continue
            raise CheckpointError(f'checkpoint is missing key {prefix}{k} (shape {tuple(v.shape)})')
        if tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(f'checkpoint key {prefix}{k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}')
    extra = sorted(set(sd) - set(want))
    if extra:
        raise CheckpointError(f'checkpoint has keys this backbone does not: {", ".join(prefix + e for e in extra[:5])}')
    return {k: sd[k].float() for k in want}


def load_backbone(ckpt_dir: str, cfg: DiTConfig) -> DiT:
    """The checkpoint's DiT, its keys checked against ours, ready for export."""
    model = DiT(cfg)
    model.load_state_dict(checked_state_dict(load_state_dict(ckpt_dir), model))
    return model.eval()


def gpt2_special_tokens(masked: bool = True) -> dict:
    """GPT-2's ids as the published checkpoints use them: one <|endoftext|> (50256) is BOS, EOS
    and the document separator; masked families add [MASK] as the extra id 50257 (uniform ones
    keep the id in the vocabulary, unused)."""
    return {'mask': 50257 if masked else None, 'eos': 50256, 'bos': 50256, 'pad': None}


def write_gpt2_tokenizer(out: str, vocab_size: int) -> dict:
    """Writes GPT-2's tokenizer (with [MASK]) into the model directory `out`, created here,
    after checking the checkpoint's vocabulary is that one; returns its JSON."""
    tok = gpt2_tokenizer()
    if vocab_size != len(tok['model']['vocab']):
        raise CheckpointError(f'config vocab_size {vocab_size} does not match GPT-2 + [MASK] ({len(tok["model"]["vocab"])})')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False)
    return tok


def convert(ckpt_dir: str, out: str, name: str, fp16=False) -> DiT:
    cfg, raw = config_from(ckpt_dir)
    model = load_backbone(ckpt_dir, cfg)
    write_gpt2_tokenizer(out, cfg.vocab_size)
    graph = os.path.join(out, 'denoiser.onnx')
    export_graph(MdlmDenoiser(model), graph)
    if fp16:
        fp16_initializers(graph)
    time_cond = bool(raw.get('time_conditioning', False))
    mf.write(out, {
        'name': name, 'family': 'mdlm', 'description': f'MDLM converted from {os.path.abspath(ckpt_dir)}',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': gpt2_special_tokens(),
        'architecture': mf.architecture(cfg, count_params(model)),
        'time_conditioning': time_cond,
        'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3},
        'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': ['tokens', 'attention_mask'], 'outputs': ['logits']}},
        'samplers': mf.MDLM_SAMPLERS,
        'defaults': {'sampler': 'ddpm_cache', 'steps': 128, 'max_tokens': 128},
        'provenance': {'converted_from': os.path.abspath(ckpt_dir), 'config': raw},
    })
    return model


def _convert_with_parity(ckpt_dir: str, out: str, name: str, fp16=False, parity_out=None) -> DiT:
    model = convert(ckpt_dir, out, name, fp16)
    if parity_out:
        from .parity import write_cases
        os.makedirs(parity_out, exist_ok=True)
        write_cases(model, os.path.join(out, 'denoiser.onnx'), parity_out, fp16)
    return model


def main(argv=None):
    converter_main(_convert_with_parity, 'mdlm-owt', __doc__, argv,
                   lambda ap: ap.add_argument('--parity-out', default=None, help='also write parity cases (tests)'))


if __name__ == '__main__':
    main()
