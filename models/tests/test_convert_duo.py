import json

import onnx
import pytest
import torch

from dlm import convert_duo
from fake_checkpoints import write_mdlm_owt


def write_duo(path: str, fmt='bin') -> dict:
    """The s-sahoo/duo layout: mdlm-owt's files and keys, with time conditioning on."""
    sd = write_mdlm_owt(path, fmt=fmt)
    cfg_path = f'{path}/config.json'
    c = json.load(open(cfg_path))
    c.update(model_type='duo', architectures=['Duo'], time_conditioning=True)
    json.dump(c, open(cfg_path, 'w'))
    return sd


@pytest.mark.parametrize('fmt', ['bin', 'safetensors'])
def test_duo_layout_converts_keeps_weights_and_takes_sigma(tmp_path, fmt):
    sd = write_duo(str(tmp_path / 'ckpt'), fmt)
    model = convert_duo.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'fake-duo')
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd['backbone.' + k].float()), k
    m = json.load(open(tmp_path / 'out' / 'model.json'))
    assert m['family'] == 'duo' and m['noise']['type'] == 'uniform' and m['time_conditioning'] is True
    assert m['special_tokens']['eos'] == 50256 and m['special_tokens']['mask'] is None
    g = onnx.load(str(tmp_path / 'out' / 'denoiser.onnx'))
    assert [i.name for i in g.graph.input] == m['graphs']['denoiser']['inputs'] == ['tokens', 'attention_mask', 'sigma']


def test_time_conditioning_off_is_refused(tmp_path):
    write_mdlm_owt(str(tmp_path / 'ckpt'))  # time_conditioning: false, an MDLM checkpoint
    with pytest.raises(SystemExit, match='time_conditioning is false'):
        convert_duo.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')


def test_missing_key_is_named(tmp_path):
    sd = write_duo(str(tmp_path / 'ckpt'))
    del sd['backbone.sigma_map.mlp.0.weight']
    torch.save(sd, tmp_path / 'ckpt' / 'pytorch_model.bin')
    with pytest.raises(SystemExit, match=r'missing key backbone\.sigma_map\.mlp\.0\.weight'):
        convert_duo.convert(str(tmp_path / 'ckpt'), str(tmp_path / 'out'), 'x')
