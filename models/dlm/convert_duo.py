"""Converts a published Duo checkpoint (s-sahoo/duo layout: the MDLM DiT with the same
Hugging Face files, config.json + model.safetensors or pytorch_model.bin, keys under
`backbone.`, trained on uniform-state noise with time conditioning) to a servable `duo` model
directory with the GPT-2 tokenizer. The graph takes `sigma` (Duo's network reads the noise
level). Users bring the files; nothing is downloaded.

  python -m dlm.convert_duo --checkpoint DIR --out models/zoo/duo-owt [--fp16-weights]
"""
import argparse
import json
import os

from . import manifest as mf
from .convert_mdlm import CheckpointError, checked_state_dict, config_from, load_state_dict
from .dit import DiT, count_params
from .export import fp16_initializers
from .export_uniform import export_graph, manifest
from .gpt2_tokenizer import build as gpt2_tokenizer


def convert(ckpt_dir: str, out: str, name: str, fp16=False) -> DiT:
    cfg, raw = config_from(ckpt_dir)
    if raw.get('time_conditioning') is False:
        # Duo's sampler feeds sigma; a network trained without it is an MDLM checkpoint.
        raise CheckpointError(f'{ckpt_dir}/config.json: time_conditioning is false; a Duo checkpoint is '
                              'time-conditioned (convert an MDLM checkpoint with dlm.convert_mdlm)')
    model = DiT(cfg)
    model.load_state_dict(checked_state_dict(load_state_dict(ckpt_dir), model))
    model.eval()
    tok = gpt2_tokenizer()
    if cfg.vocab_size != len(tok['model']['vocab']):
        raise CheckpointError(f'config vocab_size {cfg.vocab_size} does not match GPT-2 + [MASK] ({len(tok["model"]["vocab"])})')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False)
    graph = os.path.join(out, 'denoiser.onnx')
    inputs, outputs = export_graph('duo', model, cfg, graph)
    if fp16:
        fp16_initializers(graph)
    m = manifest('duo', name, cfg, count_params(model), inputs, outputs, tok, 1e-3,
                 {'converted_from': os.path.abspath(ckpt_dir), 'config': raw})
    m['description'] = f'Duo converted from {os.path.abspath(ckpt_dir)}'
    # GPT-2's <|endoftext|> is both EOS and the document separator the checkpoints were trained with.
    m['special_tokens'] = {'mask': None, 'eos': 50256, 'bos': 50256, 'pad': None}
    mf.write(out, m)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--name', default='duo-owt')
    ap.add_argument('--fp16-weights', action='store_true')
    a = ap.parse_args(argv)
    convert(a.checkpoint, a.out, a.name, a.fp16_weights)
    print(json.dumps({'out': a.out}))


if __name__ == '__main__':
    main()
