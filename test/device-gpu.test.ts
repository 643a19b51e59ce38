// CUDA for real: runs only where an NVIDIA GPU is visible, and is reported as skipped ("not
// run") everywhere else, never as passed. scripts/gpu-check.sh runs it on a GPU machine after
// installing the provider (scripts/install-cuda.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../engine/device-session.js';
import { buildDeviceGraph, buildDoublingGraph, DEVICE_GRAPH_VOCAB } from './fixtures/device-graph.js';

const NOT_RUN = !existsSync('/dev/nvidiactl') && 'no NVIDIA GPU on this machine: CUDA tests not run';

function tokens(batch: number, length: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: batch * length }, (_, i) => BigInt((i * 13 + 5) % DEVICE_GRAPH_VOCAB)), [batch, length]);
}

test('cuda computes the logits the cpu computes, at batch 1 and 64', { skip: NOT_RUN }, async () => {
  const graph = buildDeviceGraph();
  const [cpu, gpu] = [await openDeviceSession(graph, 'cpu'), await openDeviceSession(graph, 'cuda')];
  for (const batch of [1, 64]) {
    const feeds = { tokens: tokens(batch, 32) };
    const a = (await cpu.run(feeds)).logits!.data as Float32Array;
    const b = (await gpu.run(feeds)).logits!.data as Float32Array;
    assert.equal(b.length, batch * 32 * DEVICE_GRAPH_VOCAB);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    // TF32 matmuls on the GPU: a 10-bit mantissa over a 16-wide dot product of O(1) values.
    assert.ok(worst < 1e-2, `batch ${batch}: max |cpu - cuda| = ${worst}`);
  }
  await Promise.all([cpu.release(), gpu.release()]);
});

test('cuda: an output left on the device (gpu-buffer) feeds the next call, and a host session reads it back', { skip: NOT_RUN }, () => {
  const graph = buildDoublingGraph();
  // In a child process: onnxruntime-node aborts the process on some unsupported location paths.
  const script = `
    import * as ort from 'onnxruntime-node';
    const onDevice = await ort.InferenceSession.create(${JSON.stringify(graph)}, { executionProviders: ['cuda'], preferredOutputLocation: 'gpu-buffer' });
    const toHost = await ort.InferenceSession.create(${JSON.stringify(graph)}, { executionProviders: ['cuda'] });
    let state = new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [3]);
    const locations = [];
    for (let i = 0; i < 2; i++) { state = (await onDevice.run({ state })).next_state; locations.push(state.location); }
    const out = (await toHost.run({ state })).next_state;
    console.log(JSON.stringify({ locations, last: out.location, data: Array.from(out.data) }));`;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: root, timeout: 60_000 });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { locations: string[]; last: string; data: number[] };
  assert.deepEqual(got.locations, ['gpu-buffer', 'gpu-buffer']);
  assert.deepEqual(got.data, [8, 16, 24]);
});
