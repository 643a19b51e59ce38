"""The `denoiser_kv` graph for whole-sequence MDLM (dlm.export_kv): with an empty past and every
position as a query it is the plain denoiser; a cache computed from the same tokens reproduces
the full forward for any window; a stale cache is an approximation that really is used; the
exporter rebuilds the DiT from denoiser.onnx alone and stores no weight twice."""
import json
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from dlm import export_kv
from dlm.bd3lm import BlockDenoiser
from dlm.export import MdlmDenoiser, round_like_fp16_initializers
from dlm.parity import random_model
from dlm.parity_kv import write_model_dir

TOL = 1e-5


def _empty(dit, B):
    c = dit.cfg
    z = torch.zeros(B, c.n_layers, c.n_heads, 1, c.head_dim)
    return z, z.clone(), torch.zeros(B, 1, dtype=torch.long)


def _full(dit, toks, mask=None):
    B, L = toks.shape
    mask = torch.ones(B, L, dtype=torch.long) if mask is None else mask
    pos = torch.arange(L)[None].expand(B, L)
    with torch.no_grad():
        return BlockDenoiser(dit).eval()(toks, mask, pos, *_empty(dit, B))


def _window(dit, toks, k, v, lo, hi):
    """Logits of positions lo..hi-1 against cached keys/values (k, v) of all other positions."""
    B, L = toks.shape
    keep = torch.tensor([i for i in range(L) if not lo <= i < hi])
    pos = torch.arange(lo, hi)[None].expand(B, hi - lo)
    with torch.no_grad():
        return BlockDenoiser(dit).eval()(toks[:, lo:hi], torch.ones(B, hi - lo, dtype=torch.long), pos,
                                         k[:, :, :, keep], v[:, :, :, keep],
                                         torch.ones(B, len(keep), dtype=torch.long))[0]


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


def test_cache_of_the_same_tokens_reproduces_the_full_forward_for_any_window():
    dit = random_model()
    toks = torch.randint(0, dit.cfg.vocab_size, (1, 24), generator=torch.Generator().manual_seed(1))
    logits, k, v = _full(dit, toks)
    for lo, hi in [(16, 24), (8, 16), (0, 4)]:  # prefix cache, dual cache (both sides), suffix only
        assert (_window(dit, toks, k, v, lo, hi) - logits[:, lo:hi]).abs().max() < TOL


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
def test_export_rebuilds_the_dit_and_shares_every_large_weight(tmp_path, fp16):
    dit = random_model()
    d = str(tmp_path)
    write_model_dir(dit, d, fp16)
    info = export_kv.export_kv(d)
    if fp16:
        round_like_fp16_initializers(dit)
    back = export_kv.dit_from_denoiser(os.path.join(d, 'denoiser.onnx'), dit.cfg)
    for (n, p), (_, q) in zip(dit.named_parameters(), back.named_parameters()):
        assert torch.equal(p, q), n
    man = json.load(open(os.path.join(d, 'model.json')))
    g = man['graphs']['denoiser_kv']
    assert g['inputs'] == ['tokens', 'attention_mask', 'positions', 'past_keys', 'past_values', 'past_mask']
    assert g['weights_from']['sha256'] == export_kv.sha256(os.path.join(d, 'denoiser.onnx'))
    m = onnx.load(os.path.join(d, 'denoiser_kv.onnx'), load_external_data=False)
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
