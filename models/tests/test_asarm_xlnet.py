"""The XLNet converter (dlm.asarm_xlnet) on a checkpoint of the Hugging Face layout with random
weights: the masking rules of the converted network, a servable model directory, and errors
that name the bad key. Logits are not compared with the Hugging Face implementation here."""
import json
import os

import pytest
import torch

from dlm.asarm_xlnet import XLNetAsarm, XLNetConfig, convert
from dlm.convert_mdlm import CheckpointError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(REPO, 'models', 'zoo', 'asarm-brown', 'tokenizer.json')
CFG = dict(vocab_size=4096, d_model=16, n_layer=2, n_head=2, d_head=8, d_inner=32)


def hf_state_dict(seed=0):
    torch.manual_seed(seed)
    m = XLNetAsarm(XLNetConfig(**CFG))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'layer_norm' not in name:
                p.normal_(0, 0.3)
    sd = {('lm_loss.bias' if k == 'lm_bias' else f'transformer.{k}'): v for k, v in m.state_dict().items()}
    sd['lm_loss.weight'] = sd['transformer.word_embedding.weight'].clone()
    return m.eval(), sd


def write_ckpt(path, sd, cfg=None):
    os.makedirs(path, exist_ok=True)
    json.dump({**CFG, 'attn_type': 'bi', 'ff_activation': 'gelu', 'layer_norm_eps': 1e-12, 'untie_r': True,
               **(cfg or {})}, open(os.path.join(path, 'config.json'), 'w'))
    torch.save(sd, os.path.join(path, 'pytorch_model.bin'))


def test_query_stream_sees_only_earlier_ranks():
    m, _ = hf_state_dict()
    x = torch.randint(0, 4096, (1, 7), generator=torch.Generator().manual_seed(1))
    ranks = torch.tensor([[0, 0, 3, 1, 2, 4, 5]])
    mask = torch.ones(1, 7, dtype=torch.long)
    base = m(x, ranks, mask)
    i = 2  # rank 3 sees positions 0, 1, 3, 4
    y = x.clone()
    y[0, i] += 1
    y[0, 5] += 1
    y[0, 6] += 1
    assert torch.allclose(m(y, ranks, mask)[0, i], base[0, i], atol=1e-4)
    z = x.clone()
    z[0, 4] += 1
    assert not torch.allclose(m(z, ranks, mask)[0, i], base[0, i], atol=1e-4)


def test_convert_writes_a_servable_directory(tmp_path):
    _, sd = hf_state_dict()
    ckpt = tmp_path / 'ckpt'
    write_ckpt(str(ckpt), sd)
    out = tmp_path / 'out'
    convert(str(ckpt), TOKENIZER, str(out), 'asarm-xlnet-test', None, None, 64, False)
    man = json.load(open(out / 'model.json'))
    assert man['family'] == 'asarm' and man['graphs']['asarm']['inputs'] == ['tokens', 'ranks', 'attention_mask']
    assert man['special_tokens']['mask'] == 3
    assert (out / 'asarm.onnx').stat().st_size > 0 and (out / 'tokenizer.json').exists()


def unigram_tokenizer(path, vocab_size):
    """A SentencePiece-style (Unigram) tokenizer.json with XLNet's special pieces."""
    specials = ['<unk>', '<s>', '</s>', '<cls>', '<sep>', '<pad>', '<mask>', '<eod>', '<eop>']
    pieces = [[p, 0.0] for p in specials] + [[f'\u2581w{i}', -float(i)] for i in range(vocab_size - len(specials))]
    tok = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [{'id': i, 'content': p, 'single_word': False, 'lstrip': False, 'rstrip': False,
                          'normalized': False, 'special': True} for i, p in enumerate(specials)],
        'normalizer': None,
        'pre_tokenizer': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True},
        'post_processor': None,
        'decoder': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True},
        'model': {'type': 'Unigram', 'unk_id': 0, 'vocab': pieces, 'byte_fallback': False},
    }
    json.dump(tok, open(path, 'w'))
    return str(path)


def test_convert_reads_xlnet_special_tokens_from_a_unigram_tokenizer(tmp_path):
    _, sd = hf_state_dict()
    write_ckpt(str(tmp_path / 'ckpt'), sd)
    tok = unigram_tokenizer(tmp_path / 'tokenizer.json', CFG['vocab_size'])
    convert(str(tmp_path / 'ckpt'), tok, str(tmp_path / 'out'), 'x', None, None, 64, False)
    man = json.load(open(tmp_path / 'out' / 'model.json'))
    assert man['special_tokens'] == {'mask': 6, 'bos': 1, 'eos': 2, 'pad': 5}


def test_errors_name_the_key(tmp_path):
    _, sd = hf_state_dict()
    bad = dict(sd)
    del bad['transformer.layer.1.rel_attn.r_r_bias']
    write_ckpt(str(tmp_path / 'a'), bad)
    with pytest.raises(CheckpointError, match='transformer.layer.1.rel_attn.r_r_bias'):
        convert(str(tmp_path / 'a'), TOKENIZER, str(tmp_path / 'oa'), 'x', None, None, 64, False)
    bad = dict(sd)
    bad['transformer.layer.0.ff.layer_1.weight'] = torch.zeros(5, 16)
    write_ckpt(str(tmp_path / 'b'), bad)
    with pytest.raises(CheckpointError, match=r'transformer.layer.0.ff.layer_1.weight has shape \[5, 16\]'):
        convert(str(tmp_path / 'b'), TOKENIZER, str(tmp_path / 'ob'), 'x', None, None, 64, False)
    bad = dict(sd)
    bad['lm_loss.weight'] = bad['lm_loss.weight'] + 1
    write_ckpt(str(tmp_path / 'c'), bad)
    with pytest.raises(CheckpointError, match='untied head'):
        convert(str(tmp_path / 'c'), TOKENIZER, str(tmp_path / 'oc'), 'x', None, None, 64, False)
    write_ckpt(str(tmp_path / 'd'), sd, {'attn_type': 'uni'})
    with pytest.raises(CheckpointError, match='attn_type'):
        convert(str(tmp_path / 'd'), TOKENIZER, str(tmp_path / 'od'), 'x', None, None, 64, False)
    os.makedirs(tmp_path / 'e')
    with pytest.raises(CheckpointError, match='no config.json'):
        convert(str(tmp_path / 'e'), TOKENIZER, str(tmp_path / 'oe'), 'x', None, None, 64, False)


def test_spm_reader_refuses_what_it_cannot_convert(tmp_path):
    from dlm.asarm_spm import SpmError, convert as convert_spm
    empty = tmp_path / 'empty.model'
    empty.write_bytes(b'')
    with pytest.raises(SpmError, match='no pieces'):
        convert_spm(str(empty), str(tmp_path / 'a.json'))
    # One piece ("a", type normal) and a trainer spec saying BPE (model_type 2).
    piece = b'\x0a\x03' + b'\x0a\x01a'
    bpe = tmp_path / 'bpe.model'
    bpe.write_bytes(piece + b'\x12\x02\x18\x02')
    with pytest.raises(SpmError, match='only Unigram'):
        convert_spm(str(bpe), str(tmp_path / 'b.json'))
    trunc = tmp_path / 'trunc.model'
    trunc.write_bytes(b'\x0a\x85')
    with pytest.raises(SpmError, match='truncated'):
        convert_spm(str(trunc), str(tmp_path / 'c.json'))
