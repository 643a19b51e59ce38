"""The published bd3lm-owt-block_size* layout converts to a `block` graph with its weights and
block size; a bad block size is named."""
import json
import os

import pytest
import torch

from dlm import bd3lm, convert_bd3lm
from fake_checkpoints import write_mdlm_owt


def fake_bd3lm(out: str, block_size=4, fmt='bin'):
    sd = write_mdlm_owt(out, fmt=fmt)
    cfg = json.load(open(os.path.join(out, 'config.json')))
    cfg.update({'model_type': 'bd3lm', 'architectures': ['BD3LM'], 'block_size': block_size,
                'cross_attn': True, 'adaln': True, 'var_min': True})
    json.dump(cfg, open(os.path.join(out, 'config.json'), 'w'))
    return sd


@pytest.mark.parametrize('fmt', ['bin', 'safetensors'])
def test_published_layout_converts_with_its_block_size(tmp_path, fmt):
    sd = fake_bd3lm(str(tmp_path / 'ckpt'), 8, fmt)
    model = convert_bd3lm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'fake-bd3lm')
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd['backbone.' + k].float()), k
    man = json.load(open(tmp_path / 'out' / 'model.json'))
    assert man['family'] == 'bd3lm' and man['block'] == {'size': 8, 'sizes': [8]}
    assert man['special_tokens']['mask'] == 50257 and man['defaults']['block_size'] == 8
    assert os.path.getsize(tmp_path / 'out' / 'block.onnx') > 0
    # The converted backbone decodes block by block exactly as its full block-causal pass.
    x = torch.randint(0, 50257, (1, 16))
    with torch.no_grad():
        full = model(x, attn_bias=bd3lm.block_causal_bias(16, 8))
    assert (full - bd3lm.cached_forward(model, x, 8)).abs().max() < 1e-4


def test_bad_block_size_is_named(tmp_path):
    fake_bd3lm(str(tmp_path / 'ckpt'), block_size=5)
    with pytest.raises(SystemExit, match='block_size 5'):
        convert_bd3lm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')
