// The converter for published BD3-LM checkpoints (kuleshov-group/bd3lm-owt-block_size* layout):
// a checkpoint with the published key names, the GPT-2 vocabulary and a smaller width converts
// to a model directory the engine serves in blocks of the checkpoint's size. Weight and error
// checks are in models/tests/test_bd3lm_convert.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EngineCore } from '../engine/core.js';
import { loadModelDir } from '../engine/manifest.js';
import type { DoneMsg } from '../engine/protocol.js';

const REPO = resolve(import.meta.dirname, '..', '..');

test('a checkpoint in the bd3lm-owt layout converts, loads and decodes in its blocks', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dlm-convert-bd3-'));
  const script = `
import sys; sys.path.insert(0, 'tests')
from test_bd3lm_convert import fake_bd3lm
fake_bd3lm('${tmp}/ckpt', 4, 'safetensors')
`;
  let r = spawnSync('/usr/bin/python3', ['-c', script], { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  r = spawnSync('/usr/bin/python3', ['-m', 'dlm.convert_bd3lm', '--checkpoint', `${tmp}/ckpt`, '--out', `${tmp}/model`], { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const md = loadModelDir(`${tmp}/model`);
  assert.equal(md.manifest.family, 'bd3lm');
  assert.deepEqual(md.manifest.block, { size: 4, sizes: [4] });
  const commits: number[][] = [];
  let done: DoneMsg | undefined;
  let finished!: () => void;
  const over = new Promise<void>((res) => { finished = res; });
  const core = await EngineCore.open({ modelDir: `${tmp}/model`, device: 'cpu', threads: 1 }, {
    commit: (_id, t) => commits.push(t), step: () => {}, error: (e) => assert.fail(e.message), done: (d) => { done = d; finished(); },
  });
  core.generate(1, [464, 3290, 373, 257, 1110], { ...core.model.defaults, maxTokens: 8, seed: 1, ignoreEos: true, stopTokenIds: [], streamSteps: false });
  await over;
  await core.close();
  assert.equal(done!.reason, 'length');
  assert.deepEqual(commits.map((c) => c.length), [3, 4, 1]); // the prompt's 5th token opens block 2
  for (const t of commits.flat()) assert.ok(t >= 0 && t < 50257, `token ${t} is a GPT-2 id (never [MASK])`);
  assert.equal(done!.usage.cachedTokens, 0);
});
