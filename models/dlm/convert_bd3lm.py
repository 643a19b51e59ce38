"""Converts a published BD3-LM checkpoint in the Hugging Face layout
(kuleshov-group/bd3lm-owt-block_size{4,8,16}: config.json + model.safetensors or
pytorch_model.bin, the DiT's keys under `backbone.`, the same names as mdlm-owt) to a servable
model directory with the `block` graph and the GPT-2 tokenizer. Users bring the files; nothing
is downloaded.

  python -m dlm.convert_bd3lm --checkpoint DIR --out models/zoo/bd3lm-owt-bs4 [--fp16-weights]
"""
import os

from . import manifest as mf
from .cli import converter_main
from .convert_mdlm import CheckpointError, config_from, gpt2_special_tokens, load_backbone, write_gpt2_tokenizer
from .dit import DiT, count_params
from .export import fp16_initializers
from .export_bd3lm import export_block_graph, manifest


def convert(ckpt_dir: str, out: str, name: str, fp16=False) -> DiT:
    cfg, raw = config_from(ckpt_dir)
    bs = raw.get('block_size')
    if not isinstance(bs, int) or bs < 1 or cfg.max_length % bs:
        raise CheckpointError(f'{ckpt_dir}/config.json: block_size {bs!r} is not a positive divisor of model_length {cfg.max_length}')
    model = load_backbone(ckpt_dir, cfg)
    tok = write_gpt2_tokenizer(out, cfg.vocab_size)
    graph = os.path.join(out, 'block.onnx')
    export_block_graph(model, graph)
    if fp16:
        fp16_initializers(graph)
    man = manifest(name, cfg, count_params(model), tok, [bs], {},
                   f'BD3-LM (block size {bs}) converted from {os.path.abspath(ckpt_dir)}')
    man['special_tokens'] = gpt2_special_tokens()
    man['provenance'] = {'converted_from': os.path.abspath(ckpt_dir), 'config': raw}
    mf.write(out, man)
    return model


def main(argv=None):
    converter_main(convert, 'bd3lm-owt', __doc__, argv)


if __name__ == '__main__':
    main()
