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


def test_asarm_trains_through_the_shared_loop_resumes_and_exports(tmp_path):
    """dlm.asarm_train is the table's `asarm` entry: its presets, metrics and resume."""
    from dlm import asarm_export, asarm_train
    d = str(tmp_path / 'data')
    make_data(d)
    out = str(tmp_path / 'asarm')
    common = ['--preset', 'test', '--data', d, '--out', out, '--device', 'cpu', '--val-windows', '16']
    asarm_train.main([*common, '--max-steps', '3'])
    r = json.load(open(os.path.join(out, 'results.json')))
    assert r['family'] == 'asarm' and r['steps'] == 3 and r['config']['d_model'] == 32
    assert np.isfinite(r['val_any_subset_nll']) and np.isfinite(r['val_l2r_nll'])
    assert abs(np.log(r['val_l2r_ppl']) - r['val_l2r_nll']) < 1e-3
    asarm_train.main([*common, '--max-steps', '5', '--resume'])
    r2 = json.load(open(os.path.join(out, 'results.json')))
    assert r2['steps'] == 5 and r2['tokens'] == 5 * 8 * 32
    zoo = str(tmp_path / 'zoo')
    asarm_export.main(['--run', out, '--tokenizer', os.path.join(d, 'tokenizer.json'), '--out', zoo, '--name', 'a'])
    m = json.load(open(os.path.join(zoo, 'model.json')))
    assert m['family'] == 'asarm' and m['provenance']['steps'] == 5
    assert os.path.getsize(os.path.join(zoo, 'asarm.onnx')) > 0


def test_a_family_plugs_into_the_table(tmp_path):
    """A new family is one FAMILIES entry: --family offers it and the loop runs its loss."""
    from dlm.dit import DiT
    from dlm.mdlm import mdlm_loss
    calls = []

    def loss(a, model, x0, gen, mask_id):
        calls.append(x0.shape)
        return mdlm_loss(model, x0, mask_id, gen)

    train.FAMILIES['probe'] = train.Family(build=lambda cfg, a: DiT(cfg), loss=loss,
                                           val=lambda a, m, x0, g, mask: {'val_nelbo': 1.0})
    try:
        d = str(tmp_path / 'data')
        make_data(d)
        r = run(d, str(tmp_path / 'p'), 2, ['--family', 'probe'])
    finally:
        del train.FAMILIES['probe']
    assert r['family'] == 'probe' and len(calls) == 2 and r['val_nelbo'] == 1.0
