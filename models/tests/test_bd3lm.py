"""BD3-LM: the cached block-by-block path equals the full block-causal forward; the vectorized
training pass sees exactly what the engine's block call sees; the family trains and exports."""
import json
import os

import numpy as np
import torch

from dlm import bd3lm, export_bd3lm, train
from dlm.parity import random_model
from test_train import make_data

TOL = 1e-5


def test_cached_blocks_equal_full_block_causal_forward():
    dit = random_model()
    x = torch.randint(0, dit.cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    for bs in (4, 8):
        with torch.no_grad():
            full = dit(x, attn_bias=bd3lm.block_causal_bias(24, bs))
        cached = bd3lm.cached_forward(dit, x, bs)
        assert (full - cached).abs().max() < TOL
        assert full.abs().max() > 1e-2  # the logits carry signal


def test_block_causal_attention_ignores_later_blocks():
    dit = random_model()
    x = torch.randint(0, dit.cfg.vocab_size, (1, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 12:] = (y[0, 12:] + 1) % dit.cfg.vocab_size  # change the last block only
    bias = bd3lm.block_causal_bias(16, 4)
    with torch.no_grad():
        a, b = dit(x, attn_bias=bias), dit(y, attn_bias=bias)
    assert (a[:, :12] - b[:, :12]).abs().max() < TOL
    assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-3


def test_vectorized_noisy_half_equals_block_call_on_cached_clean_blocks():
    """Training's x_t half == the engine's call on the noisy block against the clean past."""
    dit = random_model()
    g = torch.Generator().manual_seed(2)
    L, bs, mask = 16, 4, 5
    x0 = torch.randint(0, dit.cfg.vocab_size, (1, L), generator=g)
    xt = torch.where(torch.rand(1, L, generator=g) < 0.5, torch.full_like(x0, mask), x0)
    pos = torch.arange(L)
    with torch.no_grad():
        vec = dit(torch.cat([xt, x0], 1), attn_bias=bd3lm.vectorized_bias(L, bs),
                  positions=torch.cat([pos, pos])[None])[:, :L]
    den = bd3lm.BlockDenoiser(dit).eval()
    pk, pv, pm = bd3lm.empty_past(dit, 1)
    for s in range(0, L, bs):
        ones = torch.ones(1, bs, dtype=torch.long)
        p = pos[s:s + bs][None]
        with torch.no_grad():
            noisy, _, _ = den(xt[:, s:s + bs], ones, p, pk, pv, pm)
            _, k, v = den(x0[:, s:s + bs], ones, p, pk, pv, pm)
        assert (noisy - vec[:, s:s + bs]).abs().max() < TOL
        pk, pv, pm = torch.cat([pk, k], 3), torch.cat([pv, v], 3), torch.cat([pm, ones], 1)


def test_padded_past_and_block_are_ignored():
    dit = random_model()
    den = bd3lm.BlockDenoiser(dit).eval()
    g = torch.Generator().manual_seed(3)
    c = dit.cfg
    toks = torch.randint(0, c.vocab_size, (1, 4), generator=g)
    pk = torch.randn(1, c.n_layers, c.n_heads, 6, c.head_dim, generator=g)
    pv = torch.randn(1, c.n_layers, c.n_heads, 6, c.head_dim, generator=g)
    pos = torch.arange(6, 10)[None]
    with torch.no_grad():
        alone = den(toks, torch.ones(1, 4, dtype=torch.long), pos, pk, pv, torch.ones(1, 6, dtype=torch.long))[0]
        # Two junk past slots masked out, and the block padded to 6 with two masked positions.
        pk2 = torch.cat([pk, torch.randn(1, c.n_layers, c.n_heads, 2, c.head_dim)], 3)
        pv2 = torch.cat([pv, torch.randn(1, c.n_layers, c.n_heads, 2, c.head_dim)], 3)
        pm2 = torch.tensor([[1] * 6 + [0, 0]])
        toks2 = torch.cat([toks, torch.tensor([[1, 2]])], 1)
        am2 = torch.tensor([[1, 1, 1, 1, 0, 0]])
        padded = den(toks2, am2, torch.arange(6, 12)[None], pk2, pv2, pm2)[0][:, :4]
    assert (alone - padded).abs().max() < TOL


def test_loss_is_finite_and_trains(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    out = str(tmp_path / 'bd3')
    train.main(['--family', 'bd3lm', '--block-sizes', '4,8', '--t-min', '0.3', '--t-max', '0.8',
                '--preset', 'test', '--data', d, '--out', out, '--max-steps', '3', '--device', 'cpu',
                '--val-windows', '16', '--eval-every', '1000'])
    r = json.load(open(os.path.join(out, 'results.json')))
    assert r['family'] == 'bd3lm' and r['block_sizes'] == [4, 8] and np.isfinite(r['val_nelbo'])
    export_bd3lm.main(['--run', out, '--tokenizer', os.path.join(d, 'tokenizer.json'),
                       '--out', str(tmp_path / 'model'), '--name', 't'])
    man = json.load(open(tmp_path / 'model' / 'model.json'))
    assert man['family'] == 'bd3lm' and man['block'] == {'size': 4, 'sizes': [4, 8]}
    assert os.path.getsize(tmp_path / 'model' / 'block.onnx') > 10000


def test_loss_rejects_ragged_blocks():
    dit = random_model()
    try:
        bd3lm.bd3lm_loss(dit, torch.zeros(1, 10, dtype=torch.long), 5, torch.Generator(), 4)
    except ValueError as e:
        assert 'multiple' in str(e)
    else:
        raise AssertionError('no error')
