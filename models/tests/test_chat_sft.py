"""The chat fine-tune's pieces: weights recovered from an exported graph, the SFT batch layout
(clean prompt, response + EOS padding trained), the SFT loss masking only response tokens, a
short resumable run, and the data builders (OSIS stripping, line dedup, held-out words)."""
import json
import os

import numpy as np
import torch

from dlm import from_onnx, manifest as mf, sft
from dlm.corpus import dedup_lines
from dlm.dit import DiT, DiTConfig, count_params
from dlm.export import MdlmDenoiser, export_graph
from dlm.parity import random_model

EOS, PAD, MASK = 2, 0, 3


def test_recovered_weights_equal_the_exported_ones(tmp_path):
    model = random_model()
    out = tmp_path / 'm'
    out.mkdir()
    export_graph(MdlmDenoiser(model).eval(), str(out / 'denoiser.onnx'))
    cfg = model.cfg
    mf.write(str(out), {'family': 'mdlm', 'vocab_size': cfg.vocab_size, 'max_length': cfg.max_length,
                        'architecture': mf.architecture(cfg, count_params(model)),
                        'graphs': {'denoiser': {'file': 'denoiser.onnx'}}})
    rec, _ = from_onnx.recover(str(out))
    want = model.state_dict()
    got = rec.state_dict()
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def write_chat(prefix, examples):
    ids, idx = [], []
    for p, r in examples:
        idx += [len(ids), len(p), len(r)]
        ids += p + r
    np.array(ids, dtype='<u2').tofile(prefix + '.bin')
    np.array(idx, dtype='<i4').tofile(prefix + '.idx')


def test_sft_batch_keeps_prompt_clean_and_pads_the_response_with_eos(tmp_path):
    prefix = str(tmp_path / 'c')
    write_chat(prefix, [([10, 11, 12], [20, 21, EOS]), ([13], [22, EOS])])
    ex = sft.ChatExamples(prefix)
    tok, attn, rm = sft.sft_batch(ex, np.array([0, 1]), np.random.default_rng(0), EOS, PAD, max_len=32, canvas_max=8)
    for b, (p, r) in enumerate([([10, 11, 12], [20, 21, EOS]), ([13], [22, EOS])]):
        n = int(attn[b].sum())
        row = tok[b, :n].tolist()
        assert row[:len(p)] == p and row[len(p):len(p) + len(r)] == r
        assert all(t == EOS for t in row[len(p) + len(r):])  # EOS padding, trained
        assert not rm[b, :len(p)].any() and rm[b, len(p):n].all()  # prompt never in the loss
        assert n - len(p) <= 8
        assert (tok[b, n:] == PAD).all() and not rm[b, n:].any()  # batch padding: not attended


def test_sft_loss_masks_only_response_tokens():
    torch.manual_seed(0)
    model = DiT(DiTConfig(vocab_size=40, d_model=32, n_layers=1, n_heads=2, cond_dim=16, max_length=32))
    seen = []
    forward = model.forward

    def spy(xt, **kw):
        seen.append(xt.clone())
        return forward(xt, **kw)

    model.forward = spy
    tok = torch.randint(4, 40, (8, 20))
    attn = torch.ones(8, 20, dtype=torch.long)
    rm = torch.zeros(8, 20, dtype=torch.bool)
    rm[:, 12:] = True
    loss, _ = sft.sft_loss(model, tok, attn, rm, MASK, torch.Generator().manual_seed(0), 1e-3)
    xt = seen[0]
    assert torch.equal(xt[:, :12], tok[:, :12])  # the prompt stays clean
    assert (xt[:, 12:] == MASK).any() and torch.isfinite(loss)
    assert ((xt == MASK) <= rm).all()


def test_short_sft_run_resumes(tmp_path):
    from tests.test_train import make_data
    d = str(tmp_path / 'data')
    make_data(d)
    V = len(json.load(open(os.path.join(d, 'tokenizer.json')))['model']['vocab'])
    init = tmp_path / 'init'
    init.mkdir()
    cfg = DiTConfig(vocab_size=V, d_model=32, n_layers=1, n_heads=2, cond_dim=16, max_length=64)
    torch.save(DiT(cfg).state_dict(), init / 'ema.pt')
    json.dump({'config': cfg.to_dict(), 'provenance': {'steps': 1}}, open(init / 'results.json', 'w'))
    rng = np.random.default_rng(0)
    prefix = str(tmp_path / 'chat')
    write_chat(prefix, [(rng.integers(4, V, 5).tolist(), rng.integers(4, V, 4).tolist() + [EOS]) for _ in range(40)])
    args = ['--init', str(init), '--chat', prefix, '--text', d, '--out', str(tmp_path / 'run'), '--minutes', '5',
            '--sft-batch', '4', '--text-batch', '2', '--text-seq', '32', '--canvas-max', '12', '--dev', '4',
            '--val-windows', '4', '--threads', '1']
    sft.main(args + ['--max-steps', '3'])
    r = json.load(open(tmp_path / 'run' / 'results.json'))
    assert r['steps'] == 3 and r['text_tokens'] == 2 * 32 and r['sft_tokens'] > 0  # step 3 is the text batch
    sft.main(args + ['--max-steps', '5', '--resume'])
    r2 = json.load(open(tmp_path / 'run' / 'results.json'))
    assert r2['steps'] == 5 and r2['sft_tokens'] > r['sft_tokens']
    assert np.isfinite(r2['val_nelbo']) and np.isfinite(r2['dev_sft'])


def test_osis_markup_is_stripped():
    from data.sources import strip_osis
    s = strip_osis('<title>Psalm 1</title><p>Blessed is the man &amp; <hi type="italic">he</hi></p>')
    assert s == 'Psalm 1\nBlessed is the man & he'


def test_repeated_long_lines_are_dropped_once_seen():
    line = 'In the beginning God created the heaven and the earth, verily.'
    docs = dedup_lines([('a/1', f'{line}\nshort'), ('b/1', f'{line.upper()}\nother'), ('c/1', line)])
    assert docs == [('a/1', f'{line}\nshort'), ('b/1', 'other')]


def test_held_out_words_and_meanings_never_reach_training():
    import random
    from data.build_instructions import wordnet_pairs
    train, held, held_words, held_synsets = wordnet_pairs(random.Random(0))
    assert len(held_words) > 100 and held
    held_refs = {r['reference'] for r in held}
    for r in train:
        assert r['key'] not in held_words
        assert r['reference'] not in held_refs, r  # no gloss or example of a held-out word
    assert all(r['key'] in held_words for r in held)


def test_pad_weight_scales_only_the_padding_after_the_closing_eos(tmp_path):
    prefix = str(tmp_path / 'c')
    write_chat(prefix, [([10, 11], [20, 21, EOS])])
    ex = sft.ChatExamples(prefix)
    rng = np.random.default_rng(3)
    tok, attn, rm = sft.sft_batch(ex, np.array([0]), rng, EOS, PAD, max_len=32, canvas_max=12, pad_weight=0.25)
    n = int(attn[0].sum())
    assert n > 5  # drawn with some padding
    assert rm[0, :2].tolist() == [0, 0] and rm[0, 2:5].tolist() == [1, 1, 1]
    assert rm[0, 5:n].tolist() == [0.25] * (n - 5) and not rm[0, n:].any()
    torch.manual_seed(0)
    model = DiT(DiTConfig(vocab_size=40, d_model=32, n_layers=1, n_heads=2, cond_dim=16, max_length=32))
    full, _ = sft.sft_loss(model, tok, attn, (rm > 0).float(), MASK, torch.Generator().manual_seed(0), 1e-3)
    part, _ = sft.sft_loss(model, tok, attn, rm, MASK, torch.Generator().manual_seed(0), 1e-3)
    none, _ = sft.sft_loss(model, tok, attn, rm * (rm == 1), MASK, torch.Generator().manual_seed(0), 1e-3)
    # The same draws; the losses divide by the weighted positions (n - 2, n - 2, 3): the padding's
    # share of the summed loss is scaled, not dropped.
    assert none * 3 < part * (n - 2) < full * (n - 2)
