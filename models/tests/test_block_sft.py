"""The chat fine-tune of the block family (dlm.sft --family e2d2): rows padded to whole blocks,
the prompt never noised and seen as context, only masked response positions in the loss,
batch padding invisible, the loss falls, a short run resumes, and the export carries the chat
template. Served end to end with the official openai client: test/e2d2-chat-sft.test.ts."""
import json
import os

import numpy as np
import pytest
import torch

from dlm import e2d2_export, sft
from dlm.e2d2 import E2D2
from dlm.e2d2_parity import random_model
from tests.test_chat_sft import EOS, PAD, write_chat
from tests.test_e2d2 import _cached_logits
from tests.test_train import make_data, run

MASK = 96  # random_model's vocabulary is 97: its last id plays [MASK]
TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'chat_template.json')


def _batch(tmp_path, examples, bs, pad_weight=0.5, seed=0):
    prefix = str(tmp_path / 'c')
    write_chat(prefix, examples)
    ex = sft.ChatExamples(prefix)
    return sft.sft_batch(ex, np.arange(len(examples)), np.random.default_rng(seed), EOS, PAD, max_len=64,
                         canvas_max=0, pad_weight=pad_weight, align=bs)


def _examples(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(4, MASK, int(rng.integers(1, 11))).tolist(),
             rng.integers(4, MASK, int(rng.integers(1, 9))).tolist() + [EOS]) for _ in range(n)]


def test_rows_end_with_eos_up_to_the_end_of_their_block(tmp_path):
    examples = [([10, 11, 12], [20, 21, EOS]), ([13], [22, EOS]), ([14, 15, 16, 17, 18], [23, 24, 25, 26, EOS])]
    tok, attn, rm = _batch(tmp_path, examples, 4, pad_weight=0.25)
    assert tok.shape[1] % 4 == 0
    for b, (p, r) in enumerate(examples):
        n = int(attn[b].sum())
        assert n % 4 == 0 and n - 4 < len(p) + len(r) <= n  # no whole block of [EOS] after the answer
        assert tok[b, :len(p) + len(r)].tolist() == p + r and (tok[b, len(p) + len(r):n] == EOS).all()
        assert rm[b, :len(p)].sum() == 0 and (rm[b, len(p):len(p) + len(r)] == 1).all()
        assert (rm[b, len(p) + len(r):n] == 0.25).all() and rm[b, n:].sum() == 0
    assert (tok[1, int(attn[1].sum()):] == PAD).all()


def _spy(m):
    seen = []
    forward = m.forward

    def spy(xt, x0, block_size):
        seen.append((xt.clone(), x0.clone(), block_size))
        return forward(xt, x0, block_size)

    m.forward = spy
    return seen


def test_prompt_never_noised_and_every_response_block_keeps_a_mask(tmp_path):
    m = random_model()
    seen = _spy(m)
    for bs in (4, 8):
        tok, attn, rm = _batch(tmp_path, _examples(16), bs)
        for seed in range(5):
            loss, _ = sft.e2d2_sft_loss(m, tok, rm, MASK, torch.Generator().manual_seed(seed), 1e-3, bs)
            xt, x0, used = seen[-1]
            assert used == bs and torch.equal(x0, tok) and torch.isfinite(loss)  # the encoder reads the clean rows
            noised = xt == MASK
            assert torch.equal(xt[~noised], tok[~noised])
            assert not noised[rm == 0].any()  # prompt and batch padding stay as they are
            B, L = tok.shape
            has_response = (rm > 0).view(B, L // bs, bs).any(-1)
            assert noised.view(B, L // bs, bs).any(-1)[has_response].all()
    # Evaluation leaves the draw alone: at a low t some response blocks keep no [MASK].
    tok, attn, rm = _batch(tmp_path, _examples(16), 4)
    unforced = 0
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        sft.e2d2_sft_loss(m, tok, rm, MASK, g, 1e-3, 4, force=False)
        xt = seen[-1][0]
        B, L = tok.shape
        blocks = (rm > 0).view(B, L // 4, 4).any(-1)
        unforced += int(((~(xt == MASK).view(B, L // 4, 4).any(-1)) & blocks).sum())
    assert unforced > 0


def _logits_grad(m, tok, attn, rm, seed, bs=4):
    """The loss's gradient on the decoder's logits, and which positions were masked."""
    got = {}

    def hook(_mod, _inp, out):
        out.retain_grad()
        got['logits'] = out

    seen = _spy(m)
    h = m.output_layer.register_forward_hook(hook)
    try:
        loss, _ = sft.e2d2_sft_loss(m, tok, rm, MASK, torch.Generator().manual_seed(seed), 1e-3, bs)
        loss.backward()
    finally:
        h.remove()
    return loss, got['logits'].grad, seen[-1][0] == MASK


def test_loss_counts_only_masked_response_positions(tmp_path):
    m = random_model().train()
    tok, attn, rm = _batch(tmp_path, _examples(8), 4)
    for seed in range(3):
        m.zero_grad()
        _, g, noised = _logits_grad(m, tok, attn, rm, seed)
        per_pos = g.abs().sum(-1)
        assert (per_pos[~noised] == 0).all()  # no prompt, padding or unmasked response token in the loss
        assert (per_pos[noised] > 0).all()
        assert not noised[rm == 0].any()


def test_batch_padding_is_invisible_and_the_prompt_is_context(tmp_path):
    m = random_model()
    examples = _examples(8)
    tok, attn, rm = _batch(tmp_path, examples, 4)
    pad = attn == 0
    assert pad.any()

    def loss(t):
        return float(sft.e2d2_sft_loss(m, t, rm, MASK, torch.Generator().manual_seed(7), 1e-3, 4)[0])

    base = loss(tok)
    other = tok.clone()
    other[pad] = torch.randint(4, MASK, (int(pad.sum()),), generator=torch.Generator().manual_seed(1))
    assert abs(loss(other) - base) < 1e-6  # whole blocks of padding after a row: no row sees them
    prompt = tok.clone()
    first = (rm == 0) & (attn == 1)
    first[:, 1:] = False  # each row's first prompt token
    prompt[first] = (prompt[first] + 1 - 4) % (MASK - 4) + 4
    assert abs(loss(prompt) - base) > 1e-4  # the response blocks read the prompt


@torch.no_grad()
def test_a_padded_sft_batch_gives_what_the_engine_computes_for_each_row(tmp_path):
    """The engine's path (the prompt's whole blocks in one encoder call, then per block a decoder
    call with the prompt's remainder clean at the head of the first) against the training
    forward of the padded batch: each row's response blocks get the same logits."""
    m = random_model()
    examples = _examples(6, seed=3)
    tok, attn, rm = _batch(tmp_path, examples, 4)
    g = torch.Generator().manual_seed(0)
    seen = _spy(m)
    sft.e2d2_sft_loss(m, tok, rm, MASK, g, 1e-3, 4)
    xt = seen[-1][0]
    full = E2D2.forward(m, xt, tok, 4)
    for b, (p, _) in enumerate(examples):
        n = int(attn[b].sum())
        whole = len(p) // 4
        alone = _cached_logits(m, xt[b:b + 1, :n], tok[b:b + 1, :n], 4, prefill_blocks=whole)
        assert (alone[0] - full[b, whole * 4:n]).abs().max() < 1e-4, b


def test_a_few_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    m = random_model().train()
    tok, attn, rm = _batch(tmp_path, _examples(8), 4)

    def held():
        with torch.no_grad():
            return np.mean([float(sft.e2d2_sft_loss(m, tok, rm, MASK, torch.Generator().manual_seed(100 + s),
                                                    1e-3, 4, force=False)[0]) for s in range(4)])

    before = held()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for i in range(25):
        loss, _ = sft.e2d2_sft_loss(m, tok, rm, MASK, torch.Generator().manual_seed(i), 1e-3, 4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held() < 0.8 * before


def test_short_e2d2_run_resumes_and_exports_with_its_chat_template(tmp_path):
    d = str(tmp_path / 'data')
    make_data(d)
    V = len(json.load(open(os.path.join(d, 'tokenizer.json')))['model']['vocab'])
    init = str(tmp_path / 'e2d2')
    run(d, init, 2, ['--family', 'e2d2', '--dec-layers', '1', '--block-sizes', '4,8', '--preset', 'tiny',
                     '--seq-len', '64'])
    rng = np.random.default_rng(0)
    prefix = str(tmp_path / 'chat')
    write_chat(prefix, [(rng.integers(4, V, 5).tolist(), rng.integers(4, V, 4).tolist() + [EOS]) for _ in range(40)])
    out = str(tmp_path / 'run')
    args = ['--family', 'e2d2', '--init', init, '--chat', prefix, '--text', d, '--out', out, '--minutes', '5',
            '--sft-batch', '4', '--text-batch', '2', '--text-seq', '32', '--dev', '4', '--val-windows', '4',
            '--threads', '1', '--pad-weight', '0.1']
    sft.main(args + ['--max-steps', '3'])
    r = json.load(open(os.path.join(out, 'results.json')))
    assert r['family'] == 'e2d2' and r['preset'] == 'chat-sft' and r['steps'] == 3
    assert r['block_sizes'] == [4, 8] and r['dec_layers'] == 1
    assert r['text_tokens'] == 2 * 32 and r['sft_tokens'] > 0 and r['sft_tokens'] % 4 == 0  # whole blocks
    sft.main(args + ['--max-steps', '5', '--resume'])
    r2 = json.load(open(os.path.join(out, 'results.json')))
    assert r2['steps'] == 5 and r2['sft_tokens'] > r['sft_tokens']
    assert np.isfinite(r2['val_nelbo']) and np.isfinite(r2['dev_sft'])
    zoo = str(tmp_path / 'zoo')
    e2d2_export.main(['--run', out, '--tokenizer', os.path.join(d, 'tokenizer.json'), '--out', zoo,
                      '--chat-template', TEMPLATE, '--description', 'E2D2 chat'])
    man = json.load(open(os.path.join(zoo, 'model.json')))
    assert man['family'] == 'e2d2' and man['chat_template'] == json.load(open(TEMPLATE))
    assert man['description'] == 'E2D2 chat' and man['block'] == {'size': 4, 'sizes': [4, 8]}
    assert man['provenance']['preset'] == 'chat-sft' and man['provenance']['sft_tokens'] == r2['sft_tokens']
    assert man['provenance']['val_nelbo_at_start'] == r2['history'][0]['val_nelbo']
    # An MDLM run is not an E2D2 init.
    with pytest.raises(SystemExit, match='e2d2'):
        sft.main(['--family', 'mdlm', '--init', init, '--chat', prefix, '--text', d, '--out', str(tmp_path / 'x'),
                  '--minutes', '1', '--max-steps', '1'])
