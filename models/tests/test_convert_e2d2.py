"""The published E2D2 OpenWebText layout (kuleshov-group/e2d2, Qwen3 encoder + decoder) converts to
an `e2d2` model directory. Checked on small synthetic checkpoints with the published key names:
  - weights land where they belong and the manifest says what the engine needs (n_kv_heads);
  - a dense computation of the published forward, written from the reference's description and
    reading the published keys directly (not our module), gives our module's logits: a wrong key
    mapping, a norm left out or a wrong rotary/GQA convention fails it (the last test shows it can);
  - the serving split (encoder per block against its cache, decoder against the context K/V)
    gives the uncached forward's logits;
  - Composer checkpoints (and their EMA weights), untied output layers and bad inputs.
ONNX Runtime against PyTorch: test/e2d2-convert.test.ts (cases written by --parity-out)."""
import json
import math
import os

import pytest
import torch

from dlm import convert_e2d2
from fake_checkpoints import e2d2_owt_state_dict, write_e2d2_owt
from test_e2d2 import _cached_logits

TOL = 1e-4  # logits of order 1-10 in fp32; the paths differ only in summation order
MASK = 50257


def reference_logits(sd: dict, xt, x0, bs: int, H: int, Hkv: int, theta=1e6, eps=1e-6):
    """The published forward, densely: the encoder over x0 (block-causal) and its final norm; then
    each decoder layer over the concatenation [encoder states ; noisy states] with the positions
    [0..L) twice, queries and residuals from the noisy half, keys/values from both, the encoder
    states re-inserted unchanged after every layer; the decoder's norm; the decoder's lm_head."""
    P = lambda k: sd['backbone.' + k].float()  # noqa: E731
    B, L = x0.shape
    Dh = P('encoder.model.layers.0.self_attn.q_norm.weight').shape[0]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rope(x, pos):
        ang = pos.double()[:, None] * (1.0 / theta ** (torch.arange(0, Dh, 2).double() / Dh))[None]
        cos, sin = torch.cat([ang, ang], -1).cos().float(), torch.cat([ang, ang], -1).sin().float()
        return x * cos + torch.cat([-x[..., Dh // 2:], x[..., :Dh // 2]], -1) * sin

    def layer(pre, h, q_from, pos, allowed):
        n, nq = h.shape[1], h.shape[1] - q_from
        x = rms(h, P(pre + 'input_layernorm.weight'))
        proj = lambda name, t, heads: (t @ P(pre + f'self_attn.{name}.weight').T).view(B, -1, heads, Dh)  # noqa: E731
        q = rms(proj('q_proj', x[:, q_from:], H), P(pre + 'self_attn.q_norm.weight')).transpose(1, 2)
        k = rms(proj('k_proj', x, Hkv), P(pre + 'self_attn.k_norm.weight')).transpose(1, 2)
        v = proj('v_proj', x, Hkv).transpose(1, 2)
        q, k = rope(q, pos[q_from:]), rope(k, pos)
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
        a = torch.softmax(s.masked_fill(~allowed, float('-inf')), -1) @ v
        r = h[:, q_from:] + a.transpose(1, 2).reshape(B, nq, H * Dh) @ P(pre + 'self_attn.o_proj.weight').T
        m = rms(r, P(pre + 'post_attention_layernorm.weight'))
        mlp = (torch.nn.functional.silu(m @ P(pre + 'mlp.gate_proj.weight').T) * (m @ P(pre + 'mlp.up_proj.weight').T))
        assert k.shape[2] == n
        return r + mlp @ P(pre + 'mlp.down_proj.weight').T

    embed = P('encoder.model.embed_tokens.weight')
    n_layers = lambda side: len({k.split('.')[4] for k in sd if k.startswith(f'backbone.{side}.model.layers.')})  # noqa: E731
    blk, pos = torch.arange(L) // bs, torch.arange(L)
    h = embed[x0]
    for i in range(n_layers('encoder')):
        h = layer(f'encoder.model.layers.{i}.', h, 0, pos, blk[:, None] >= blk[None, :])
    h = rms(h, P('encoder.model.norm.weight'))
    kv_blk, noisy = torch.cat([blk, blk]), torch.cat([torch.zeros(L, dtype=torch.bool), torch.ones(L, dtype=torch.bool)])
    allowed = ((blk[:, None] > kv_blk[None]) & ~noisy[None]) | ((blk[:, None] == kv_blk[None]) & noisy[None])
    y = embed[xt]
    for j in range(n_layers('decoder')):
        y = layer(f'decoder.model.layers.{j}.', torch.cat([h, y], 1), L, torch.cat([pos, pos]), allowed)
    return rms(y, P('decoder.model.norm.weight')) @ P('decoder.lm_head.weight').T


def _data(L=16, seed=0, B=2):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, MASK, (B, L), generator=g)
    xt = torch.where(torch.rand(B, L, generator=g) < 0.5, torch.full_like(x0, MASK), x0)
    return xt, x0


@pytest.mark.parametrize('fmt', ['bin', 'safetensors'])
def test_published_layout_converts_with_its_sizes(tmp_path, fmt):
    sd = write_e2d2_owt(str(tmp_path / 'ckpt'), fmt)
    out = tmp_path / 'out'
    model = convert_e2d2.convert(str(tmp_path / 'ckpt'), str(out), 'fake-e2d2-owt')
    ours = model.state_dict()
    assert torch.equal(ours['encoder.layers.1.self_attn.k_norm.weight'], sd['backbone.encoder.model.layers.1.self_attn.k_norm.weight'])
    assert torch.equal(ours['decoder.layers.0.mlp.down_proj.weight'], sd['backbone.decoder.model.layers.0.mlp.down_proj.weight'])
    assert torch.equal(ours['encoder.embed_tokens.weight'], sd['backbone.encoder.model.embed_tokens.weight'])
    assert model.lm_head is None  # tied: one vocabulary table
    man = json.load(open(out / 'model.json'))
    a = man['architecture']
    assert (a['n_heads'], a['n_kv_heads'], a['head_dim'], a['d_model'], a['d_ff']) == (4, 2, 16, 32, 64)
    assert (a['encoder_layers'], a['decoder_layers'], a['n_layers']) == (2, 1, 3)
    assert man['family'] == 'e2d2' and man['block'] == {'size': 4, 'sizes': [4]} and man['max_length'] == 64
    assert man['special_tokens'] == {'mask': 50257, 'eos': 50256, 'bos': 50256, 'pad': None}
    assert man['noise'] == {'type': 'masked', 'schedule': 'loglinear', 'eps': 0.0}
    for f in ('encoder.onnx', 'decoder.onnx', 'tokenizer.json', 'README.md'):
        assert os.path.getsize(out / f) > 0
    # The tied table is stored once per graph (the decoder's output layer reads the embedding).
    assert os.path.getsize(out / 'decoder.onnx') < 1.5 * 50258 * 32 * 4


@pytest.mark.parametrize('heads', [(4, 2), (4, 1), (2, 2)])
def test_module_matches_a_dense_computation_of_the_published_forward(tmp_path, heads):
    H, Hkv = heads
    sd = write_e2d2_owt(str(tmp_path / 'ckpt'), n_heads=H, n_kv_heads=Hkv)
    model, bs, _ = convert_e2d2.load(str(tmp_path / 'ckpt'))
    xt, x0 = _data()
    with torch.no_grad():
        got = model(xt, x0, bs)
    want = reference_logits(sd, xt, x0, bs, H, Hkv)
    assert want.abs().max() > 1.0  # the logits carry signal
    assert (got - want).abs().max() < TOL


def test_the_dense_check_catches_a_wrong_mapping(tmp_path):
    """A norm left out, q/k norms swapped or the wrong query-to-KV grouping moves the logits far
    past the tolerance: the check above can fail."""
    sd = write_e2d2_owt(str(tmp_path / 'ckpt'))
    xt, x0 = _data()
    want = reference_logits(sd, xt, x0, 4, 4, 2)
    for break_it in ('encoder_norm', 'swap_qk_norm', 'grouping'):
        model, _, _ = convert_e2d2.load(str(tmp_path / 'ckpt'))
        with torch.no_grad():
            if break_it == 'encoder_norm':
                model.encoder.norm.weight.fill_(1.0)
            elif break_it == 'swap_qk_norm':
                att = model.decoder.layers[0].self_attn
                q, k = att.q_norm.weight.clone(), att.k_norm.weight.clone()
                att.q_norm.weight.copy_(k)
                att.k_norm.weight.copy_(q)
            else:  # query head h reading KV head h % Hkv instead of h // (H / Hkv)
                w = model.decoder.layers[0].self_attn.q_proj.weight
                w.copy_(w.view(2, 2, 16, 32).transpose(0, 1).reshape(64, 32))
            got = model(xt, x0, 4)
        assert (got - want).abs().max() > 100 * TOL, break_it


def test_cached_block_by_block_equals_the_uncached_forward(tmp_path):
    write_e2d2_owt(str(tmp_path / 'ckpt'))
    model, bs, _ = convert_e2d2.load(str(tmp_path / 'ckpt'))
    xt, x0 = _data(L=16)
    with torch.no_grad():
        full = model(xt, x0, bs)
        assert (_cached_logits(model, xt, x0, bs) - full).abs().max() < TOL
        # The prompt's blocks in one encoder call (block-causal inside it) give the same context.
        assert (_cached_logits(model, xt, x0, bs, prefill_blocks=2) - full[:, 2 * bs:]).abs().max() < TOL


def test_composer_checkpoint_and_its_ema(tmp_path):
    sd = write_e2d2_owt(str(tmp_path / 'ckpt'), 'composer')
    path = str(tmp_path / 'ckpt' / 'ckpt.pt')
    with pytest.raises(SystemExit, match='block size None'):
        convert_e2d2.load(path)  # no config.json: the block size is a flag
    key = 'backbone.decoder.model.layers.0.self_attn.v_proj.weight'
    plain, bs, _ = convert_e2d2.load(path, block_size=4)
    ema, _, _ = convert_e2d2.load(path, block_size=4, ema=True)
    assert bs == 4 and plain.cfg.max_length == 1024  # the run's length when nothing says otherwise
    assert torch.equal(plain.state_dict()['decoder.layers.0.self_attn.v_proj.weight'], sd[key])
    assert torch.allclose(ema.state_dict()['decoder.layers.0.self_attn.v_proj.weight'], sd[key] + 0.01)


def test_untied_output_layer(tmp_path):
    sd = e2d2_owt_state_dict(tied=False)
    os.makedirs(tmp_path / 'ckpt')
    torch.save(sd, tmp_path / 'ckpt' / 'w.bin')
    model, _, _ = convert_e2d2.load(str(tmp_path / 'ckpt' / 'w.bin'), block_size=4)
    assert model.lm_head is not None and torch.equal(model.lm_head.weight, sd['backbone.decoder.lm_head.weight'])
    xt, x0 = _data()
    with torch.no_grad():
        assert (model(xt, x0, 4) - reference_logits(sd, xt, x0, 4, 4, 2)).abs().max() < TOL


def test_bad_checkpoints_are_named(tmp_path):
    sd = write_e2d2_owt(str(tmp_path / 'ckpt'))
    ck = str(tmp_path / 'ckpt')
    bad = dict(sd)
    del bad['backbone.decoder.model.norm.weight']
    torch.save(bad, tmp_path / 'ckpt' / 'pytorch_model.bin')
    with pytest.raises(SystemExit, match=r'missing key backbone\.decoder\.model\.norm\.weight'):
        convert_e2d2.load(ck)
    bad = dict(sd)
    bad['backbone.encoder.model.layers.1.mlp.up_proj.weight'] = torch.zeros(7, 32)
    torch.save(bad, tmp_path / 'ckpt' / 'pytorch_model.bin')
    with pytest.raises(SystemExit, match=r'backbone\.encoder\.model\.layers\.1\.mlp\.up_proj\.weight has shape \(7, 32\)'):
        convert_e2d2.load(ck)
    torch.save(sd, tmp_path / 'ckpt' / 'pytorch_model.bin')
    cfg = json.load(open(tmp_path / 'ckpt' / 'config.json'))
    cfg['backbone_config']['use_encoder_causal_mask'] = True
    json.dump(cfg, open(tmp_path / 'ckpt' / 'config.json', 'w'))
    with pytest.raises(SystemExit, match='use_encoder_causal_mask'):
        convert_e2d2.load(ck)
    cfg['backbone_config']['use_encoder_causal_mask'] = False
    cfg['backbone_config']['num_decoder_layers'] = 4
    json.dump(cfg, open(tmp_path / 'ckpt' / 'config.json', 'w'))
    with pytest.raises(SystemExit, match='num_decoder_layers is 4 but the tensors say 1'):
        convert_e2d2.load(ck)
    with pytest.raises(SystemExit, match='--ema needs a Composer checkpoint'):
        convert_e2d2.load(ck, ema=True)


def test_command_line(tmp_path):
    write_e2d2_owt(str(tmp_path / 'ckpt'), 'composer')
    convert_e2d2.main(['--checkpoint', str(tmp_path / 'ckpt' / 'ckpt.pt'), '--out', str(tmp_path / 'out'),
                       '--block-size', '4', '--max-length', '128', '--ema', '--fp16-weights'])
    man = json.load(open(tmp_path / 'out' / 'model.json'))
    assert man['name'] == 'e2d2-owt' and man['max_length'] == 128 and man['block']['size'] == 4
    assert man['provenance']['converter'] == 'dlm.convert_e2d2'
