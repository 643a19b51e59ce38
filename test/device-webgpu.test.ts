// WebGPU for real on a machine without a GPU: Dawn on lavapipe, mesa's CPU Vulkan driver,
// installed privately by scripts/setup-lavapipe.sh (CI runs it). The Vulkan loader is found
// through LD_LIBRARY_PATH, which the dynamic loader reads only at process start, so the graph
// runs in a child process. Without lavapipe these tests are reported as skipped (not run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDeviceGraph, buildDoublingGraph, DEVICE_GRAPH_VOCAB } from './fixtures/device-graph.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAVAPIPE = join(ROOT, '.work/lavapipe');
const ICD = join(LAVAPIPE, 'lvp_icd.json');
const LIBDIR = join(LAVAPIPE, 'root/usr/lib/x86_64-linux-gnu');
const NOT_RUN = !existsSync(ICD) && 'lavapipe is not set up (bash scripts/setup-lavapipe.sh): WebGPU on the CPU not run';
const env = { ...process.env, VK_DRIVER_FILES: ICD, LD_LIBRARY_PATH: [LIBDIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };

test('webgpu on lavapipe: every output matches the cpu, at batch 1 and 4', { skip: NOT_RUN }, () => {
  const graph = buildDeviceGraph();
  const probe = fileURLToPath(new URL('../loadtest/device-probe.js', import.meta.url));
  const r = spawnSync(process.execPath, [probe, '--device', 'webgpu', '--model', graph, '--batch', '1,4', '--length', '16', '--runs', '2', '--json'], {
    encoding: 'utf8',
    env,
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    results: Array<{ ok: boolean; maxAbsDiff: number; residentError?: string; batches: Array<{ batch: number; outputBytes: number; residentMs?: number }> }>;
  };
  const g = report.results[0]!;
  assert.ok(g.ok);
  // The same calls with the logits left on the device were timed too.
  assert.equal(g.residentError, undefined);
  for (const b of g.batches) assert.ok(b.residentMs !== undefined && b.residentMs > 0);
  // float32 throughout, 16-wide dot products: WebGPU and the CPU agree to rounding.
  assert.ok(g.maxAbsDiff < 1e-4, `max |webgpu - cpu| = ${g.maxAbsDiff}`);
  assert.deepEqual(g.batches.map((b) => b.outputBytes), [1, 4].map((b) => b * 16 * DEVICE_GRAPH_VOCAB * 4));
});

test('webgpu on lavapipe: the diagnosis finds the loader and the driver', { skip: NOT_RUN }, () => {
  const check = fileURLToPath(new URL('../engine/device-check.js', import.meta.url));
  const script = `import { diagnoseDevice } from ${JSON.stringify(check)}; console.log(JSON.stringify(diagnoseDevice('webgpu')));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const d = JSON.parse(r.stdout) as { ok: boolean; problems: string[]; found: string[] };
  assert.deepEqual(d.problems, []);
  assert.ok(d.ok);
  assert.ok(d.found.includes(ICD), JSON.stringify(d.found));
});

test('webgpu: an output left on the device feeds the next call without a copy, and a host session reads it back', { skip: NOT_RUN }, () => {
  const graph = buildDoublingGraph();
  // Three calls on the device (state -> 2 state), the last output read by a host-output session:
  // the pattern of a KV cache or an LDDM latent that never needs to visit the host.
  const script = `
    import * as ort from 'onnxruntime-node';
    const onDevice = await ort.InferenceSession.create(${JSON.stringify(graph)}, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
    const toHost = await ort.InferenceSession.create(${JSON.stringify(graph)}, { executionProviders: ['webgpu'] });
    let state = new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [3]);
    const locations = [];
    for (let i = 0; i < 2; i++) { state = (await onDevice.run({ state })).next_state; locations.push(state.location); }
    const out = (await toHost.run({ state })).next_state;
    console.log(JSON.stringify({ locations, last: out.location, data: Array.from(out.data) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env, cwd: ROOT, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { locations: string[]; last: string; data: number[] };
  assert.deepEqual(got.locations, ['gpu-buffer', 'gpu-buffer']);
  assert.equal(got.last, 'cpu');
  assert.deepEqual(got.data, [8, 16, 24]);
});
