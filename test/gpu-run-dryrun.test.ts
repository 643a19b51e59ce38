// The CPU dry run of the one prepared GPU run (scripts/gpu-run.sh --dry-run): every step but the
// GPU ones, at small sizes, so the run on a lent GPU cannot fail on a typo. Checks that the JSON
// the docs/gpu.md tables are built from has every served family and every measurement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuRun } from '../loadtest/device-table.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
// One model per served family (the judge is an AR yardstick, not served; the default model is
// an MDLM too, and the slowest here).
const MODELS = ['tiny-mdlm', 'duo-brown', 'lddm-brown', 'bd3lm-brown', 'e2d2-brown', 'asarm-brown'];
const FAMILIES = ['asarm', 'bd3lm', 'duo', 'e2d2', 'lddm', 'mdlm'];
const BATCHES = [1, 2];

test('gpu-run --dry-run: every family served and checked, every measurement in gpu-run.json, the tables built from it', { timeout: 300_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'gpu-run-'));
  try {
    const args = ['scripts/gpu-run.sh', '--dry-run', '--out', out, '--batches', BATCHES.join(','), '--runs', '1', '--max-tokens', '8', '--steps', '2',
      ...MODELS.flatMap((m) => ['--model', `models/zoo/${m}`])];
    const r = spawnSync('bash', args, { cwd: REPO, encoding: 'utf8', timeout: 280_000, env: { ...process.env, PYTHON: '/usr/bin/python3' } });
    assert.equal(r.status, 0, `exit ${r.status}:\n${(r.stdout + r.stderr).slice(-4000)}`);

    // What comes back from the device tool: at most 8 files, none deeper than $OUT itself here.
    const files = readdirSync(out).sort();
    assert.ok(files.length <= 8, files.join(', '));
    for (const f of ['gpu-run.json', 'tables.md', 'log.txt']) assert.ok(files.includes(f), `${f} missing: ${files.join(', ')}`);

    const run = JSON.parse(readFileSync(join(out, 'gpu-run.json'), 'utf8')) as GpuRun;
    assert.equal(run.failures, 0);
    assert.equal(run.machine.dryRun, true);
    assert.equal(run.machine.gpu, null);
    assert.match(run.machine.onnxruntimeNode, /^\d+\.\d+\.\d+$/);
    assert.equal(typeof run.machine.installCudaCheck.exit, 'number');
    // The carried-tree check: what one call would carry (tree without the models left out + the largest part).
    assert.equal(run.carry.limitMiB, 64);
    assert.equal(typeof run.carry.fits, 'boolean');
    assert.ok((run.carry.treeBytes as number) > 1e6 && (run.carry.treeBytes as number) < 64 * 2 ** 20, `tree ${String(run.carry.treeBytes)} bytes`);

    assert.deepEqual(run.families, FAMILIES);
    assert.deepEqual(run.serve.map((s) => s.device), ['cpu']);
    for (const m of run.serve[0]!.models) {
      assert.ok(m.ok, `${m.family}: ${m.error}`);
      for (const c of ['completion', 'stream', 'seed'] as const) assert.ok(m.checks[c].ok, `${m.family} ${c}: ${m.checks[c].error}`);
      assert.ok(m.nParams > 0);
      assert.deepEqual(m.sweep.map((p) => p.batch), BATCHES);
      for (const p of m.sweep) {
        assert.ok(p.tokensPerSec > 0 && p.tflops > 0 && p.calls > 0 && p.meanBatch >= 1 && p.meanBatch <= p.batch, `${m.family} batch ${p.batch}: ${JSON.stringify(p)}`);
        assert.equal(p.completionTokens, p.requests * 8, `${m.family}: ignore_eos gives every request its 8 tokens`);
      }
    }

    // Every graph of every model probed, at every batch size.
    assert.deepEqual(run.probes.map((p) => p.model.split('/').at(-1)).sort(), [...MODELS].sort());
    for (const p of run.probes) {
      for (const g of p.results) {
        assert.ok(g.ok, `${p.model} ${g.role}: ${g.error}`);
        assert.deepEqual(g.batches.map((b) => b.batch), BATCHES);
      }
    }
    // Host traffic before and after the in-graph logit reductions: far fewer bytes per step.
    const denoiser = run.transfer.filter((t) => t.model === 'tiny-mdlm' && t.graph === 'denoiser');
    assert.deepEqual(denoiser.map((t) => t.batch), BATCHES);
    for (const t of run.transfer) assert.ok(t.reducedBytes > 0 && t.ratio > 10, `${t.model} ${t.graph}: ${t.fullBytes} -> ${t.reducedBytes} bytes`);
    assert.ok(Array.isArray(run.variants));

    const tables = readFileSync(join(out, 'tables.md'), 'utf8');
    assert.match(tables, /Not measured: no GPU was lent/);
    assert.match(tables, /scripts\/gpu-run\.sh --bundle/);
    for (const f of FAMILIES) assert.match(tables, new RegExp(`^\\| ${f} \\| cpu \\| \\d+ tok/s`, 'm'), `sweep row for ${f}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
