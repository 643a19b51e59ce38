"""The duo and lddm families run through dlm.train and export to model directories."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlm import train, export_uniform  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def token_files(tmp: Path) -> Path:
    """A data folder like .work/tok: the committed tiny model's tokenizer, random ids."""
    tok = tmp / 'tok'
    tok.mkdir()
    src = REPO / 'models' / 'zoo' / 'tiny-mdlm' / 'tokenizer.json'
    (tok / 'tokenizer.json').write_text(src.read_text())
    vocab = len(json.loads(src.read_text())['model']['vocab'])
    rng = np.random.default_rng(0)
    for split, n in (('train', 4000), ('val', 600)):
        rng.integers(4, vocab, n).astype(np.uint16).tofile(tok / f'{split}.bin')
    return tok


@pytest.mark.parametrize('family', ['duo', 'lddm'])
def test_train_then_export(family, tmp_path):
    TOK = token_files(tmp_path)
    run = tmp_path / 'run'
    train.main(['--family', family, '--preset', 'test', '--out', str(run), '--max-steps', '3', '--device', 'cpu',
                '--val-windows', '8', '--curriculum-steps', '2', '--data', str(TOK)])
    res = json.loads((run / 'results.json').read_text())
    assert res['family'] == family and res['steps'] == 3 and res['val_nelbo'] > 0
    out = tmp_path / 'zoo'
    export_uniform.main(['--run', str(run), '--tokenizer', str(TOK / 'tokenizer.json'), '--out', str(out), '--card'])
    m = json.loads((out / 'model.json').read_text())
    assert (out / 'denoiser.onnx').exists() and (out / 'README.md').exists()
    if family == 'duo':
        assert m['family'] == 'duo' and m['time_conditioning'] and m['noise']['type'] == 'uniform'
        assert m['graphs']['denoiser']['inputs'] == ['tokens', 'attention_mask', 'sigma']
    else:
        assert m['loopholing'] == {'latent_dim': res['config']['d_model']}
        assert 'ddpm_cache' not in m['samplers'] and 'remdm' in m['samplers']
        assert m['graphs']['denoiser']['outputs'] == ['logits', 'latent_out']
