"""The speed baseline of the E2D2 benchmark (loadtest/e2d2.ts): a whole-sequence MDLM with the
same width, total depth, heads, vocabulary and length as an E2D2 model directory, with random
weights (tokens/s depends only on the shapes; the benchmark ignores EOS).

  python -m dlm.e2d2_baseline --like models/zoo/e2d2-brown --out .work/bench/mdlm-like-e2d2
"""
import argparse
import json
import os
import shutil

import torch

from . import manifest as mf
from .dit import DiT, DiTConfig, count_params
from .export import MdlmDenoiser, export_graph


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--like', required=True, help='an E2D2 model directory')
    ap.add_argument('--out', required=True)
    a = ap.parse_args(argv)
    src = json.load(open(os.path.join(a.like, 'model.json')))
    arch = src['architecture']
    cfg = DiTConfig(vocab_size=src['vocab_size'], d_model=arch['d_model'], n_layers=arch['n_layers'],
                    n_heads=arch['n_heads'], cond_dim=arch['cond_dim'], max_length=src['max_length'],
                    mlp_ratio=arch['mlp_ratio'])
    torch.manual_seed(0)
    model = DiT(cfg).eval()
    os.makedirs(a.out, exist_ok=True)
    export_graph(MdlmDenoiser(model), os.path.join(a.out, 'denoiser.onnx'))
    shutil.copyfile(os.path.join(a.like, 'tokenizer.json'), os.path.join(a.out, 'tokenizer.json'))
    mf.write(a.out, {
        'name': 'mdlm-like-' + src['name'], 'family': 'mdlm', 'description': 'random-weight MDLM, speed baseline only',
        'tokenizer': 'tokenizer.json', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
        'special_tokens': src['special_tokens'], 'architecture': mf.architecture(cfg, count_params(model)),
        'time_conditioning': False, 'noise': {'type': 'masked', 'schedule': 'loglinear', 'eps': 1e-3},
        'graphs': {'denoiser': {'file': 'denoiser.onnx', 'inputs': ['tokens', 'attention_mask'], 'outputs': ['logits']}},
        'samplers': mf.MASKED_SAMPLERS, 'defaults': {'sampler': 'confidence_topk', 'steps': 32, 'max_tokens': 64},
    })
    print(json.dumps({'out': a.out, 'params': count_params(model)}))


if __name__ == '__main__':
    main()
