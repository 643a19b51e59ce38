"""dlm.manifest's sampler lists: every shipped masked model lists what its family serves today
(a sampler that needs no retraining reaches it through --refresh-samplers), and the refresh
rewrites only the list and the card's samplers row, once."""
import json
import os
import shutil

from dlm import manifest as mf

ZOO = os.path.join(os.path.dirname(__file__), '..', 'zoo')


def test_zoo_lists_what_its_family_serves():
    seen = set()
    for name in sorted(os.listdir(ZOO)):
        with open(os.path.join(ZOO, name, 'model.json')) as f:
            m = json.load(f)
        want = mf.served_samplers(m)
        if want is not None:
            assert m['samplers'] == want, f'{name}: run python3 -m dlm.manifest --refresh-samplers zoo/{name}'
            seen.add(m['family'])
    assert seen == {'mdlm', 'bd3lm', 'e2d2'}
    assert 'remdm' in mf.MDLM_SAMPLERS and 'remdm' not in mf.MASKED_SAMPLERS


def test_refresh_rewrites_the_list_and_card_once(tmp_path):
    src = os.path.join(ZOO, 'e2d2-brown')
    for f in ('model.json', 'README.md'):
        shutil.copy(os.path.join(src, f), tmp_path / f)
    m = json.loads((tmp_path / 'model.json').read_text())
    m['samplers'] = ['ddpm', 'confidence_topk']
    (tmp_path / 'model.json').write_text(json.dumps(m, indent=2) + '\n')
    card = (tmp_path / 'README.md').read_text()
    assert mf.refresh_samplers(str(tmp_path))
    after = json.loads((tmp_path / 'model.json').read_text())
    assert after['samplers'] == mf.MASKED_SAMPLERS
    assert {k: v for k, v in after.items() if k != 'samplers'} == {k: v for k, v in m.items() if k != 'samplers'}
    row = [line for line in (tmp_path / 'README.md').read_text().splitlines() if line.startswith('| samplers |')]
    assert row == [f"| samplers | {', '.join(mf.MASKED_SAMPLERS)} (default confidence_topk, 4 steps per block) |"]
    assert len((tmp_path / 'README.md').read_text().splitlines()) == len(card.splitlines())
    assert not mf.refresh_samplers(str(tmp_path))


def test_lddm_and_other_families_are_left_alone(tmp_path):
    for name in ('lddm-brown', 'duo-brown', 'asarm-brown'):
        d = tmp_path / name
        d.mkdir()
        shutil.copy(os.path.join(ZOO, name, 'model.json'), d / 'model.json')
        before = (d / 'model.json').read_text()
        assert not mf.refresh_samplers(str(d))
        assert (d / 'model.json').read_text() == before
