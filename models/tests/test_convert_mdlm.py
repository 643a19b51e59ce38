import os

import pytest
import torch

from dlm import convert_mdlm
from fake_checkpoints import write_mdlm_owt


@pytest.mark.parametrize('fmt', ['bin', 'safetensors'])
def test_published_layout_converts_and_keeps_weights(tmp_path, fmt):
    sd = write_mdlm_owt(str(tmp_path / 'ckpt'), fmt=fmt)
    model = convert_mdlm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'fake-owt')
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd['backbone.' + k].float()), k
    for f in ('model.json', 'denoiser.onnx', 'tokenizer.json'):
        assert os.path.exists(tmp_path / 'out' / f)


def test_missing_key_is_named(tmp_path):
    sd = write_mdlm_owt(str(tmp_path / 'ckpt'))
    del sd['backbone.blocks.1.attn_out.weight']
    torch.save(sd, tmp_path / 'ckpt' / 'pytorch_model.bin')
    with pytest.raises(SystemExit, match=r'missing key backbone\.blocks\.1\.attn_out\.weight'):
        convert_mdlm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')


def test_mismatched_shape_is_named(tmp_path):
    sd = write_mdlm_owt(str(tmp_path / 'ckpt'))
    sd['backbone.blocks.0.mlp.0.weight'] = torch.zeros(7, 32)
    torch.save(sd, tmp_path / 'ckpt' / 'pytorch_model.bin')
    with pytest.raises(SystemExit, match=r'backbone\.blocks\.0\.mlp\.0\.weight has shape \(7, 32\)'):
        convert_mdlm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')


def test_truncated_safetensors_is_named(tmp_path):
    write_mdlm_owt(str(tmp_path / 'ckpt'), fmt='safetensors')
    p = tmp_path / 'ckpt' / 'model.safetensors'
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit, match='truncated'):
        convert_mdlm.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')
