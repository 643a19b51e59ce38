"""Writes model.json in the shape engine/manifest.ts validates (format dlm-serve.model/1).

  python3 -m dlm.manifest --refresh-samplers zoo/default zoo/tiny-mdlm zoo/bd3lm-brown zoo/e2d2-brown
rewrites only the `samplers` list of exported masked models (and the card's samplers row) to
what their family serves today: samplers that need no retraining reach shipped models that way.
"""
import argparse
import json
import os
import re

FORMAT = 'dlm-serve.model/1'

# What every masked family (MDLM, BD3-LM, E2D2) steps with (engine/samplers/masked.ts), the
# adaptive rules (engine/samplers/adaptive.ts) last.
MASKED_SAMPLERS = ['ddpm', 'ddpm_cache', 'first_hitting', 'confidence_topk', 'confidence_threshold',
                   'confidence_factor', 'entropy_bound']
# remdm: ReMDM's remasking schedules (engine/families/with-remasking.ts), whole-sequence MDLM only.
MDLM_SAMPLERS = MASKED_SAMPLERS + ['remdm']


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


def served_samplers(m: dict) -> list | None:
    """The samplers list an exported masked model gets today, or None where this leaves it alone
    (other families, and LDDM models, whose list names the samplers that carry the latent)."""
    if m.get('loopholing') is not None:
        return None
    return {'mdlm': MDLM_SAMPLERS, 'bd3lm': MASKED_SAMPLERS, 'e2d2': MASKED_SAMPLERS}.get(m.get('family'))


def refresh_samplers(model_dir: str) -> bool:
    """Rewrites model_dir's samplers (and a README.md card's samplers row); True if it changed."""
    path = os.path.join(model_dir, 'model.json')
    with open(path) as f:
        m = json.load(f)
    want = served_samplers(m)
    if want is None or m['samplers'] == want:
        return False
    m['samplers'] = list(want)
    with open(path, 'w') as f:
        json.dump(m, f, indent=2)
        f.write('\n')
    card = os.path.join(model_dir, 'README.md')
    if os.path.exists(card):
        with open(card) as f:
            text = f.read()
        text = re.sub(r'^(\| samplers \| )[^(|]*( \(default)', lambda g: g.group(1) + ', '.join(want) + g.group(2),
                      text, count=1, flags=re.M)
        with open(card, 'w') as f:
            f.write(text)
    return True


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--refresh-samplers', nargs='+', metavar='MODEL_DIR', required=True)
    for d in ap.parse_args().refresh_samplers:
        print(d, 'updated' if refresh_samplers(d) else 'unchanged')
