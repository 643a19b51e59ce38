"""The duo, lddm and lddm-u families run through dlm.train and export to model directories."""
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


@pytest.mark.parametrize('family', ['duo', 'lddm', 'lddm-u'])
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
        assert 'loopholing' not in m
    elif family == 'lddm-u':
        # Declared as LDDM-M is: the base family (duo) plus the latent.
        assert m['family'] == 'duo' and m['time_conditioning'] and m['noise']['type'] == 'uniform'
        assert m['loopholing'] == {'latent_dim': res['config']['d_model']}
        assert m['graphs']['denoiser']['inputs'] == ['tokens', 'attention_mask', 'sigma', 'latent_in']
        assert m['graphs']['denoiser']['outputs'] == ['logits', 'latent_out']
        assert m['samplers'] == ['duo_greedy', 'duo']
        assert 'LDDM-U' in (out / 'README.md').read_text()
    else:
        assert m['loopholing'] == {'latent_dim': res['config']['d_model']}
        assert 'ddpm_cache' not in m['samplers'] and 'remdm' in m['samplers']
        assert m['graphs']['denoiser']['outputs'] == ['logits', 'latent_out']


def test_lddmu_loss_trains_the_latent_pathway_at_the_noise_level():
    """LDDM-U's loss is Duo's NELBO on self-conditioned logits: the latent LayerNorm gets a
    gradient (the second pass reads the first's latent), and sigma reaches both passes."""
    import argparse
    import torch
    from dlm import uniform_train
    from dlm.dit import DiTConfig
    torch.manual_seed(0)
    cfg = DiTConfig(vocab_size=50, d_model=32, n_layers=1, n_heads=2, cond_dim=16, max_length=16)
    model = uniform_train.build('lddm-u', cfg)
    with torch.no_grad():  # the zero-initialised output layer, modulation and latent norm would hide both
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    a = argparse.Namespace(family='lddm-u', eps=1e-3, t_min=0.0, t_max=1.0, curriculum_steps=0)
    x0 = torch.randint(0, 50, (8, 16))
    loss, nelbo = uniform_train.loss(a, model, x0, torch.Generator().manual_seed(0), None)
    assert torch.isfinite(loss) and float(nelbo) > 0
    loss.backward()
    assert model.latent_input.norm.weight.grad.abs().sum() > 0
    denoise = uniform_train.uniform_denoiser('lddm-u', model, torch.Generator().manual_seed(1), p_latent=1.0)
    xt = x0[:2]
    with torch.no_grad():
        assert (denoise(xt, torch.full((2,), 0.1)) - denoise(xt, torch.full((2,), 3.0))).abs().max() > 1e-3
    val = uniform_train.val_nelbo(a, model, x0, torch.Generator().manual_seed(0), None)
    assert val > 0
