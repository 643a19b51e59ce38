"""Converts a published Duo checkpoint (s-sahoo/duo layout: the MDLM DiT with the same
Hugging Face files, config.json + model.safetensors or pytorch_model.bin, keys under
`backbone.`, trained on uniform-state noise with time conditioning) to a servable `duo` model
directory with the GPT-2 tokenizer. The graph takes `sigma` (Duo's network reads the noise
level). Users bring the files; nothing is downloaded.

  python -m dlm.convert_duo --checkpoint DIR --out models/zoo/duo-owt [--fp16-weights]
"""
import os

from . import manifest as mf
from .cli import converter_main
from .convert_mdlm import CheckpointError, config_from, gpt2_special_tokens, load_backbone, write_gpt2_tokenizer
from .dit import DiT, count_params
from .export import fp16_initializers
from .export_uniform import export_graph, manifest


def convert(ckpt_dir: str, out: str, name: str, fp16=False) -> DiT:
    cfg, raw = config_from(ckpt_dir)
    if raw.get('time_conditioning') is False:
        # Duo's sampler feeds sigma; a network trained without it is an MDLM checkpoint.
        raise CheckpointError(f'{ckpt_dir}/config.json: time_conditioning is false; a Duo checkpoint is '
                              'time-conditioned (convert an MDLM checkpoint with dlm.convert_mdlm)')
    model = load_backbone(ckpt_dir, cfg)
    tok = write_gpt2_tokenizer(out, cfg.vocab_size)
    graph = os.path.join(out, 'denoiser.onnx')
    inputs, outputs = export_graph('duo', model, cfg, graph)
    if fp16:
        fp16_initializers(graph)
    m = manifest('duo', name, cfg, count_params(model), inputs, outputs, tok, 1e-3,
                 {'converted_from': os.path.abspath(ckpt_dir), 'config': raw})
    m['description'] = f'Duo converted from {os.path.abspath(ckpt_dir)}'
    m['special_tokens'] = gpt2_special_tokens(masked=False)
    mf.write(out, m)
    return model


def main(argv=None):
    converter_main(convert, 'duo-owt', __doc__, argv)


if __name__ == '__main__':
    main()
