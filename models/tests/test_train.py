import json
import os

import numpy as np

from dlm import bpe, train


def make_data(d):
    """A synthetic data folder: a small BPE tokenizer and random token files."""
    tok = bpe.tokenizer_json(bpe.train(bpe.word_counts(['the cat sat on the mat'] * 20), 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f)
    V = len(tok['model']['vocab'])
    rng = np.random.default_rng(0)
    for split, n in (('train', 20000), ('val', 2000)):
        rng.integers(4, V, size=n).astype(np.uint16).tofile(os.path.join(d, f'{split}.bin'))


def run(d, out, steps, extra=()):
    train.main(['--preset', 'test', '--data', d, '--out', out, '--max-steps', str(steps), '--device', 'cpu',
                '--val-windows', '16', '--eval-every', '1000', *extra])
    return json.load(open(os.path.join(out, 'results.json')))


def test_training_writes_results_and_resumes(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    r = run(d, str(tmp_path / 'a'), 4)
    assert r['steps'] == 4 and r['tokens'] == 4 * 8 * 32 and np.isfinite(r['val_nelbo'])
    for f in ('ema.pt', 'ckpt.pt', 'results.json'):
        assert os.path.exists(tmp_path / 'a' / f)
    r2 = run(d, str(tmp_path / 'a'), 6, ['--resume'])
    assert r2['steps'] == 6 and r2['tokens'] == 6 * 8 * 32  # continued from step 4


def test_same_seed_same_result(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    a = run(d, str(tmp_path / 'a'), 3)
    b = run(d, str(tmp_path / 'b'), 3)
    assert a['val_nelbo'] == b['val_nelbo']


def test_ar_family_trains(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    r = run(d, str(tmp_path / 'ar'), 3, ['--family', 'ar'])
    assert r['family'] == 'ar' and np.isfinite(r['val_nll'])
