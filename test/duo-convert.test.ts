// The converter for published Duo checkpoints (s-sahoo/duo layout: mdlm-owt's files and keys,
// time-conditioned): a checkpoint with those key names, the GPT-2 vocabulary and a smaller width
// converts to a `duo` model directory that the engine decodes with Duo's samplers, feeding
// sigma. Weight and error checks are in models/tests/test_convert_duo.py; the graph's parity
// with PyTorch is the Duo export's (test/duo-parity.test.ts), which the converter reuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EngineCore } from '../engine/core.js';
import { loadModelDir } from '../engine/manifest.js';
import type { DoneMsg } from '../engine/protocol.js';

const REPO = resolve(import.meta.dirname, '..', '..');

test('a checkpoint in the s-sahoo/duo layout converts, loads and decodes with sigma', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dlm-convert-duo-'));
  try {
    const script = `
import sys; sys.path.insert(0, 'tests')
from test_convert_duo import write_duo
write_duo('${tmp}/ckpt', 'safetensors')
`;
    let r = spawnSync('/usr/bin/python3', ['-c', script], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    r = spawnSync('/usr/bin/python3', ['-m', 'dlm.convert_duo', '--checkpoint', `${tmp}/ckpt`, '--out', `${tmp}/model`], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const md = loadModelDir(`${tmp}/model`);
    assert.equal(md.manifest.family, 'duo');
    assert.deepEqual(md.manifest.graphs.denoiser!.inputs, ['tokens', 'attention_mask', 'sigma']);
    const commits: number[][] = [];
    let done: DoneMsg | undefined;
    let finished!: () => void;
    const over = new Promise<void>((res) => { finished = res; });
    const core = await EngineCore.open({ modelDir: `${tmp}/model`, device: 'cpu', threads: 1 }, {
      commit: (_id, t) => commits.push(t), step: () => {}, error: (e) => assert.fail(e.message), done: (d) => { done = d; finished(); },
    });
    core.generate(1, [464, 3290, 373], { ...core.model.defaults, sampler: 'duo', steps: 4, maxTokens: 8, seed: 1, ignoreEos: true, stopTokenIds: [], streamSteps: false });
    await over;
    await core.close();
    assert.equal(done!.reason, 'length');
    assert.equal(commits.flat().length, 8);
    assert.equal(done!.usage.nfe, 4, 'one network call per Duo step');
    for (const t of commits.flat()) assert.ok(t >= 0 && t < 50258, `token ${t} is in the vocabulary`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
