"""E2D2: the cached, block-by-block path equals the full forward; masks; training; export."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dlm import e2d2_export  # noqa: E402
from dlm.e2d2 import E2D2, block_noise, decoder_bias, e2d2_loss, encoder_bias  # noqa: E402
from dlm.e2d2_parity import random_model  # noqa: E402
from test_train import make_data, run  # noqa: E402

TOL = 1e-5


def _empty(m, B, n_layers):
    z = torch.zeros(B, n_layers, m.kv_heads, 1, m.head_dim)
    return z, z.clone(), torch.zeros(B, 1, dtype=torch.long)


@torch.no_grad()
def _cached_logits(m: E2D2, xt, x0, bs: int, prefill_blocks: int = 0):
    """The engine's path in PyTorch: the first prefill_blocks clean blocks in one encoder call,
    then per block a decoder call against the cached context and an encoder call on the clean
    block, each appending its own outputs to the caches."""
    enc, dec = e2d2_export.EncoderGraph(m), e2d2_export.DecoderGraph(m)
    B, L = x0.shape
    pk, pv, pm = _empty(m, B, m.enc_layers)
    ck, cv, cm = _empty(m, B, m.dec_layers)
    out = []

    def encode(s, e):
        nonlocal pk, pv, pm, ck, cv, cm
        n = e - s
        one = torch.ones(B, n, dtype=torch.long)
        _, k, v, kk, vv = enc(x0[:, s:e], one, torch.arange(s, e)[None].expand(B, n), torch.full((B,), bs), pk, pv, pm)
        pk, pv, pm = torch.cat([pk, k], 3), torch.cat([pv, v], 3), torch.cat([pm, one], 1)
        ck, cv, cm = torch.cat([ck, kk], 3), torch.cat([cv, vv], 3), torch.cat([cm, one], 1)

    start = prefill_blocks * bs
    if start:
        encode(0, start)
    for s in range(start, L, bs):
        one = torch.ones(B, bs, dtype=torch.long)
        out.append(dec(xt[:, s:s + bs], one, torch.arange(s, s + bs)[None].expand(B, bs), ck, cv, cm))
        encode(s, s + bs)
    return torch.cat(out, 1)


def _data(m, L=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    V = m.cfg.vocab_size
    x0 = torch.randint(0, V - 1, (2, L), generator=g)
    xt = torch.where(torch.rand(2, L, generator=g) < 0.5, torch.full_like(x0, V - 1), x0)
    return xt, x0


def test_cached_block_by_block_equals_full_forward():
    m = random_model()
    for bs in (4, 8):
        xt, x0 = _data(m)
        full = m(xt, x0, bs)
        assert (_cached_logits(m, xt, x0, bs) - full).abs().max() < TOL
        # Clean blocks encoded in one call (block-causal inside it, as the prompt's prefill is)
        # give the same context as one call per block.
        xt, x0 = _data(m, L=24)
        full = m(xt, x0, bs)
        assert (_cached_logits(m, xt, x0, bs, prefill_blocks=2) - full[:, 2 * bs:]).abs().max() < TOL


def test_decoder_sees_only_earlier_blocks():
    m = random_model()
    xt, x0 = _data(m)
    a = m(xt, x0, 4)
    x0b = x0.clone()
    x0b[:, 8:] = (x0b[:, 8:] + 1) % (m.cfg.vocab_size - 1)  # change the clean tokens of blocks 2, 3
    b = m(xt, x0b, 4)
    assert (a[:, :12] - b[:, :12]).abs().max() < TOL  # blocks 0-2 do not see clean block 2 or 3
    assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-3  # block 3 sees clean block 2


def test_masks_shapes():
    e, d = encoder_bias(8, 4), decoder_bias(8, 4)
    assert e.shape == (1, 1, 8, 8) and d.shape == (1, 1, 8, 16)
    assert (d[0, 0, :4, :8] < 0).all()  # block 0 has no context
    assert (d[0, 0, :4, 8:12] == 0).all() and (d[0, 0, 4:, :4] == 0).all()


def test_every_block_keeps_a_mask_in_training():
    x0 = torch.randint(4, 90, (64, 16))
    g = torch.Generator().manual_seed(0)
    xt, masked, _ = block_noise(x0, 3, 4, g, 1e-3, 0.0, 0.05)
    assert masked.view(64, 4, 4).any(-1).all()
    assert ((xt == 3) == masked).all()


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    m = random_model().train()
    x0 = torch.randint(4, 96, (4, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for i in range(30):
        loss, _ = e2d2_loss(m, x0, 96, torch.Generator().manual_seed(i % 3), 4, weighting='unweighted')
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0] * 0.8


def test_trainer_family_e2d2_and_export(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    r = run(d, str(tmp_path / 'e'), 2, ['--family', 'e2d2', '--dec-layers', '1', '--block-sizes', '4,8',
                                        '--preset', 'tiny'])
    assert r['family'] == 'e2d2' and r['dec_layers'] == 1 and r['block_sizes'] == [4, 8]
    assert np.isfinite(r['val_nelbo'])
    out = str(tmp_path / 'zoo')
    e2d2_export.main(['--run', str(tmp_path / 'e'), '--tokenizer', os.path.join(d, 'tokenizer.json'), '--out', out, '--card'])
    man = json.load(open(os.path.join(out, 'model.json')))
    assert man['family'] == 'e2d2' and man['block'] == {'size': 4, 'sizes': [4, 8]}
    assert man['architecture']['encoder_layers'] + man['architecture']['decoder_layers'] == man['architecture']['n_layers']
    for f in ('encoder.onnx', 'decoder.onnx', 'tokenizer.json', 'README.md'):
        assert os.path.exists(os.path.join(out, f))


def test_trainer_flags_coexist_with_bd3lm_block_sizes():
    """BD3-LM's trainer adds the same --block-sizes flag: the E2D2 plug must not add it twice."""
    import argparse
    from dlm import e2d2
    ap = argparse.ArgumentParser()
    ap.add_argument('--block-sizes', default='8')
    e2d2.add_args(ap)
    a = ap.parse_args(['--dec-layers', '2'])
    assert a.block_sizes == '8' and a.dec_layers == 2
    assert e2d2.results_extra(argparse.Namespace(block_sizes=[4, 8], dec_layers=1)) == {'block_sizes': [4, 8], 'dec_layers': 1}
