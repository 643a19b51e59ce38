"""Writes model.json in the shape engine/manifest.ts validates (format dlm-serve.model/1)."""
import json
import os

FORMAT = 'dlm-serve.model/1'

# remdm: ReMDM's remasking schedules (engine/families/remdm-family.ts), which need no retraining.
MDLM_SAMPLERS = ['ddpm', 'ddpm_cache', 'first_hitting', 'confidence_topk', 'confidence_threshold', 'remdm']


def special_ids(tokenizer_json: dict) -> dict:
    vocab = tokenizer_json['model']['vocab']
    return {'mask': vocab.get('[MASK]'), 'bos': vocab.get('[BOS]'), 'eos': vocab.get('[EOS]'),
            'pad': vocab.get('[PAD]')}


def architecture(cfg, n_params: int) -> dict:
    return {'d_model': cfg.d_model, 'n_layers': cfg.n_layers, 'n_heads': cfg.n_heads,
            'head_dim': cfg.head_dim, 'n_params': n_params, 'cond_dim': cfg.cond_dim,
            'mlp_ratio': cfg.mlp_ratio, 'backbone': 'dit'}


def write(out_dir: str, manifest: dict) -> str:
    manifest = {'format': FORMAT, **manifest}
    path = os.path.join(out_dir, 'model.json')
    with open(path, 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    return path
