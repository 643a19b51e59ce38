import json
import os

import torch

from dlm import bpe, corpus, gpt2_tokenizer
from dlm.dit import DiT, DiTConfig
from dlm.mdlm import mdlm_loss


def test_brown_tags_are_stripped_and_text_rejoined():
    line = "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, it's/pps+bez fine/jj ./."
    assert corpus._detag(line) == 'The jury said "no evidence", it\'s fine.'


def test_split_is_deterministic_and_about_five_percent():
    ids = [f'doc{i}' for i in range(4000)]
    val = [i for i in ids if corpus.is_validation(i)]
    assert val == [i for i in ids if corpus.is_validation(i)]
    assert 120 < len(val) < 280


def test_bpe_learns_frequent_pairs_and_writes_specials():
    counts = bpe.word_counts(['the cat the hat the bat'] * 50)
    merges = bpe.train(counts, 5)
    assert merges[0] in {('Ġ', 't'), ('t', 'h'), ('a', 't')}
    tok = bpe.tokenizer_json(merges)
    vocab = tok['model']['vocab']
    assert [vocab[s] for s in bpe.SPECIALS] == [0, 1, 2, 3]
    assert len(vocab) == 4 + 256 + len(merges)
    assert all(t['special'] for t in tok['added_tokens'])


def test_gpt2_tokenizer_has_the_published_sizes():
    tok = gpt2_tokenizer.build()
    vocab = tok['model']['vocab']
    assert len(vocab) == 50258
    assert vocab['<|endoftext|>'] == 50256 and vocab['[MASK]'] == 50257
    assert vocab['Hello'] == 15496 and vocab['Ġworld'] == 995


def test_backbone_has_the_mdlm_owt_parameter_names():
    m = DiT(DiTConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=2, cond_dim=16))
    names = set(m.state_dict())
    for k in ['vocab_embed.embedding', 'sigma_map.mlp.0.weight', 'sigma_map.mlp.2.bias',
              'blocks.0.norm1.weight', 'blocks.0.attn_qkv.weight', 'blocks.0.attn_out.weight',
              'blocks.1.norm2.weight', 'blocks.1.mlp.0.weight', 'blocks.1.mlp.2.bias',
              'blocks.1.adaLN_modulation.weight', 'output_layer.norm_final.weight',
              'output_layer.linear.weight', 'output_layer.adaLN_modulation.bias']:
        assert k in names, k
    assert tuple(m.state_dict()['blocks.0.adaLN_modulation.weight'].shape) == (6 * 32, 16)


def test_mdlm_loss_is_finite_and_masks_at_the_scheduled_rate():
    torch.manual_seed(0)
    m = DiT(DiTConfig(vocab_size=20, d_model=16, n_layers=1, n_heads=2, cond_dim=8))
    x0 = torch.randint(0, 19, (64, 32))
    g = torch.Generator().manual_seed(0)
    loss, nelbo = mdlm_loss(m, x0, 19, g)
    assert torch.isfinite(loss) and torch.isfinite(nelbo)
    # An untrained network with zero output layer predicts uniformly over the 19 real tokens:
    # each masked position costs log(19) nats, weighted by 1/t, which averages to about log(19).
    assert abs(float(nelbo) - torch.log(torch.tensor(19.0)).item()) < 0.6
