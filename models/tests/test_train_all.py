"""models/gpu/train_all.sh --smoke: the one GPU run's whole path (every family trains, the chat
SFT follows the default, the weights are packed into parts, collected, joined, exported and
loaded by the engine), on generated data with the 1-layer test preset, for a couple of steps."""
import json
import os
import subprocess

import numpy as np

from tests.test_chat_sft import EOS, write_chat
from tests.test_train import make_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'models', 'gpu', 'train_all.sh')
NAMES = ['asarm', 'bd3lm', 'chat', 'chat-e2d2', 'default', 'duo', 'e2d2', 'judge', 'lddm', 'lddmu']


def test_smoke_trains_packs_imports_and_loads_every_model(tmp_path):
    data = str(tmp_path / 'data')
    make_data(data)
    V = len(json.load(open(os.path.join(data, 'tokenizer.json')))['model']['vocab'])
    rng = np.random.default_rng(0)
    write_chat(os.path.join(data, 'chat_train'),
               [(rng.integers(4, V, 5).tolist(), rng.integers(4, V, 4).tolist() + [EOS]) for _ in range(40)])
    work = tmp_path / 'work'
    env = {**os.environ, 'SMOKE_PRESET': 'test', 'PYTHON': '/usr/bin/python3'}
    p = subprocess.run(['bash', SCRIPT, '--smoke', '--data', data, '--work', str(work)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.load(open(work / 'ret' / 'summary.json'))
    assert sorted(summary) == NAMES and not [n for n, s in summary.items() if 'error' in s]
    assert summary['chat']['family'] == 'mdlm' and summary['chat']['preset'] == 'chat-sft'
    assert summary['chat-e2d2']['family'] == 'e2d2' and summary['chat-e2d2']['preset'] == 'chat-sft'
    parts = sorted(os.listdir(work / 'back'))
    assert parts[0] == 'summary.json' or 'weights.tar.part00' in parts
    for name in NAMES:
        m = json.load(open(work / 'zoo' / name / 'model.json'))
        assert f"loads {work / 'zoo' / name}/" in p.stdout, name
        if name in ('chat', 'chat-e2d2'):
            assert m.get('chat_template'), 'the chat models carry the template they were trained with'
            assert m['family'] == ('e2d2' if name == 'chat-e2d2' else 'mdlm')
