"""The `denoiser_kv` graph for whole-sequence MDLM and Duo (dlm.export_kv): with an empty past and
every position as a query it is the plain denoiser (Duo's at the same sigma); a cache computed
from the same tokens (and sigma) reproduces the full forward for any window; a stale cache is an
approximation that really is used (for Duo, stale in sigma too); the exporter rebuilds the DiT
from denoiser.onnx alone, reads sigma where the denoiser does, and stores no weight twice."""
import json
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from dlm import export_kv
from dlm.export import MdlmDenoiser, round_like_fp16_initializers
from dlm.export_uniform import DuoGraph
from dlm.parity import random_model
from dlm.parity_kv import kv_module, write_duo_model_dir, write_model_dir

TOL = 1e-5


def _empty(dit, B):
    c = dit.cfg
    z = torch.zeros(B, c.n_layers, c.n_heads, 1, c.head_dim)
    return z, z.clone(), torch.zeros(B, 1, dtype=torch.long)


def _run(dit, toks, mask, pos, past, sigma):
    """The kv graph's PyTorch side; sigma (Duo) goes third, as the graph takes it."""
    with torch.no_grad():
        if sigma is None:
            return kv_module(dit, False)(toks, mask, pos, *past)
        return kv_module(dit, True)(toks, mask, sigma, pos, *past)


def _full(dit, toks, mask=None, sigma=None):
    B, L = toks.shape
    mask = torch.ones(B, L, dtype=torch.long) if mask is None else mask
    return _run(dit, toks, mask, torch.arange(L)[None].expand(B, L), _empty(dit, B), sigma)


def _window(dit, toks, k, v, lo, hi, sigma=None):
    """Logits of positions lo..hi-1 against cached keys/values (k, v) of all other positions."""
    B, L = toks.shape
    keep = torch.tensor([i for i in range(L) if not lo <= i < hi])
    past = (k[:, :, :, keep], v[:, :, :, keep], torch.ones(B, len(keep), dtype=torch.long))
    return _run(dit, toks[:, lo:hi], torch.ones(B, hi - lo, dtype=torch.long),
                torch.arange(lo, hi)[None].expand(B, hi - lo), past, sigma)[0]


def test_empty_cache_all_queries_equals_plain_denoiser_with_padding():
    dit = random_model()
    toks = torch.randint(0, dit.cfg.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 13:] = 0
    with torch.no_grad():
        plain = MdlmDenoiser(dit).eval()(toks, mask)
    kv = _full(dit, toks, mask)[0]
    assert (plain[0] - kv[0]).abs().max() < TOL
    assert (plain[1, :13] - kv[1, :13]).abs().max() < TOL
    assert plain.abs().max() > 1e-2


@pytest.mark.parametrize('sigma', [None, torch.tensor([2.0])], ids=['mdlm', 'duo'])
def test_cache_of_the_same_tokens_reproduces_the_full_forward_for_any_window(sigma):
    dit = random_model()
    toks = torch.randint(0, dit.cfg.vocab_size, (1, 24), generator=torch.Generator().manual_seed(1))
    logits, k, v = _full(dit, toks, sigma=sigma)
    for lo, hi in [(16, 24), (8, 16), (0, 4)]:  # prefix cache, dual cache (both sides), suffix only
        assert (_window(dit, toks, k, v, lo, hi, sigma) - logits[:, lo:hi]).abs().max() < TOL


def test_duo_empty_cache_all_queries_equals_its_denoiser_at_each_rows_sigma():
    dit = random_model()
    toks = torch.randint(0, dit.cfg.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 13:] = 0
    sigma = torch.tensor([0.3, 5.0])
    with torch.no_grad():
        plain = DuoGraph(dit).eval()(toks, mask, sigma)
        other = DuoGraph(dit).eval()(toks, mask, sigma.flip(0))
    kv = _full(dit, toks, mask, sigma)[0]
    assert (plain[0] - kv[0]).abs().max() < TOL
    assert (plain[1, :13] - kv[1, :13]).abs().max() < TOL
    assert (plain - other).abs().max() > 1e-2  # sigma is really read


def test_duo_cache_kept_across_a_step_is_stale_in_sigma_as_well_as_in_tokens():
    dit = random_model()
    toks = torch.randint(0, dit.cfg.vocab_size, (1, 24), generator=torch.Generator().manual_seed(2))
    s0, s1 = torch.tensor([4.0]), torch.tensor([1.0])
    _, k, v = _full(dit, toks, sigma=s0)
    # Same tokens at the next step's sigma: the cached positions' keys/values were conditioned on
    # the old noise level, so even a context whose tokens did not change is stale for Duo.
    assert (_window(dit, toks, k, v, 16, 24, s1) - _full(dit, toks, sigma=s1)[0][:, 16:]).abs().max() > 1e-4


def test_stale_cache_is_an_approximation_and_is_used():
    dit = random_model()
    g = torch.Generator().manual_seed(2)
    toks = torch.randint(1, dit.cfg.vocab_size, (1, 24), generator=g)
    _, k, v = _full(dit, toks)
    changed = toks.clone()
    changed[0, 2] = (changed[0, 2] + 5) % dit.cfg.vocab_size  # a prefix token the cache still holds
    exact = _full(dit, changed)[0][:, 16:]
    stale = _window(dit, changed, k, v, 16, 24)
    assert (stale - exact).abs().max() > 1e-4  # the stale keys really are read
    # A change inside the window is seen exactly at the layer input; only deeper layers' view of
    # the window from the cached positions is stale.
    inside = toks.clone()
    inside[0, 20] = (inside[0, 20] + 5) % dit.cfg.vocab_size
    assert (_window(dit, inside, k, v, 16, 24) - _full(dit, toks)[0][:, 16:]).abs().max() > 1e-3


@pytest.mark.parametrize('fp16', [False, True])
@pytest.mark.parametrize('kind', ['mdlm', 'duo'])
def test_export_rebuilds_the_dit_and_shares_every_large_weight(tmp_path, fp16, kind):
    dit = random_model()
    d = str(tmp_path)
    (write_duo_model_dir if kind == 'duo' else write_model_dir)(dit, d, fp16)
    info = export_kv.export_kv(d)
    if fp16:
        round_like_fp16_initializers(dit)
    back = export_kv.dit_from_denoiser(os.path.join(d, 'denoiser.onnx'), dit.cfg, kind)
    for (n, p), (_, q) in zip(dit.named_parameters(), back.named_parameters()):
        assert torch.equal(p, q), n
    man = json.load(open(os.path.join(d, 'model.json')))
    g = man['graphs']['denoiser_kv']
    timed = ['sigma'] if kind == 'duo' else []
    assert g['inputs'] == ['tokens', 'attention_mask', *timed, 'positions', 'past_keys', 'past_values', 'past_mask']
    assert g['weights_from']['sha256'] == export_kv.sha256(os.path.join(d, 'denoiser.onnx'))
    m = onnx.load(os.path.join(d, 'denoiser_kv.onnx'), load_external_data=False)
    assert [i.name for i in m.graph.input] == g['inputs']
    ext = [i for i in m.graph.initializer if i.data_location == TensorProto.EXTERNAL]
    assert ext and all({e.key: e.value for e in i.external_data}['location'] == 'denoiser.onnx' for i in ext)
    assert info['inline_bytes'] < 16 * 1024 and info['shared_bytes'] > 10 * info['inline_bytes']
    # Resolved through the external references, the weights are the model's own.
    full = onnx.load(os.path.join(d, 'denoiser_kv.onnx'))
    onnx.checker.check_model(full)
    emb = {i.name: numpy_helper.to_array(i) for i in full.graph.initializer}
    key = 'dit.vocab_embed.embedding__fp16' if fp16 else 'dit.vocab_embed.embedding'
    assert np.array_equal(emb[key].astype(np.float32), dit.vocab_embed.embedding.detach().numpy())


def test_refuses_what_it_cannot_build(tmp_path):
    dit = random_model()
    d = str(tmp_path)
    write_model_dir(dit, d, False)
    man = json.load(open(os.path.join(d, 'model.json')))
    man['time_conditioning'] = True
    json.dump(man, open(os.path.join(d, 'model.json'), 'w'))
    with pytest.raises(SystemExit, match='plain DiT'):
        export_kv.export_kv(d)


def test_refuses_a_loopholing_model(tmp_path):
    dit = random_model()
    d = str(tmp_path)
    write_duo_model_dir(dit, d, False)
    man = json.load(open(os.path.join(d, 'model.json')))
    man['loopholing'] = {'latent_dim': dit.cfg.d_model}
    json.dump(man, open(os.path.join(d, 'model.json'), 'w'))
    with pytest.raises(SystemExit, match='loopholing'):
        export_kv.export_kv(d)
