// Device selection and its errors, on whatever machine runs the suite: a real ONNX graph, real
// ONNX Runtime sessions. Where the device is usable (a GPU, or a Vulkan driver Dawn accepts)
// the same tests check that it computes what the CPU does instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { DeviceUnavailableError, diagnoseDevice, missingLibraryIn } from '../engine/device-check.js';
import { executionProvidersFor, openDeviceSession } from '../engine/device-session.js';
import { buildDeviceGraph, DEVICE_GRAPH_VOCAB, scratchDir } from './fixtures/device-graph.js';

const PROBE = fileURLToPath(new URL('../loadtest/device-probe.js', import.meta.url));
const gpuPresent = existsSync('/dev/nvidiactl');
const graph = buildDeviceGraph();

function tokens(batch: number, length: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: batch * length }, (_, i) => BigInt((i * 7) % DEVICE_GRAPH_VOCAB)), [batch, length]);
}

async function logitsOn(session: ort.InferenceSession): Promise<Float32Array> {
  const out = await session.run({ tokens: tokens(2, 5) });
  return out.logits!.data as Float32Array;
}

test('every device gets exactly one execution provider: nothing to fall back to', () => {
  assert.deepEqual(executionProvidersFor('cpu'), ['cpu']);
  assert.deepEqual(executionProvidersFor('cuda'), [{ name: 'cuda', deviceId: 0 }]);
  assert.deepEqual(executionProvidersFor('cuda', { deviceId: 3 }), [{ name: 'cuda', deviceId: 3 }]);
  assert.deepEqual(executionProvidersFor('webgpu'), ['webgpu']);
});

test('the dlopen message names the missing library', () => {
  assert.equal(missingLibraryIn('libcublasLt.so.13: cannot open shared object file: No such file or directory'), 'libcublasLt.so.13');
  assert.equal(missingLibraryIn('/x/y/libonnxruntime_providers_cuda.so: cannot open shared object file'), 'libonnxruntime_providers_cuda.so');
  assert.equal(missingLibraryIn('Module did not self-register'), undefined);
});

test('cuda without the provider files: the diagnosis names the installer', { skip: process.platform !== 'linux' && 'linux only' }, () => {
  const d = diagnoseDevice('cuda', { ortBinaryDir: scratchDir() });
  assert.equal(d.ok, false);
  assert.match(d.problems[0]!, /CUDA provider is not installed \(libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so missing in .*\); run: bash scripts\/install-cuda\.sh/);
});

test('webgpu without a Vulkan loader or driver: the diagnosis says which', { skip: process.platform !== 'linux' && 'linux only' }, () => {
  const d = diagnoseDevice('webgpu', { vulkanLibrary: 'libvulkan-absent.so.9', vulkanIcdDirs: [scratchDir()] });
  const saved = { a: process.env.VK_DRIVER_FILES, b: process.env.VK_ICD_FILENAMES };
  assert.equal(d.ok, false);
  assert.equal(d.problems.length, saved.a || saved.b ? 1 : 2);
  assert.match(d.problems[0]!, /the Vulkan loader libvulkan-absent\.so\.9 is not on the library path \(Debian\/Ubuntu: apt install libvulkan1\)/);
  if (!saved.a && !saved.b) assert.match(d.problems[1]!, /no Vulkan driver is installed/);
});

test('cpu runs the graph', async () => {
  const s = await openDeviceSession(graph, 'cpu');
  const logits = await logitsOn(s);
  assert.equal(logits.length, 2 * 5 * DEVICE_GRAPH_VOCAB);
  assert.ok(logits.every(Number.isFinite));
  await s.release();
});

test('cuda on a machine without an NVIDIA GPU fails, naming what is missing', { skip: gpuPresent && 'an NVIDIA GPU is present: test/device-gpu.test.ts runs cuda for real' }, async () => {
  await assert.rejects(openDeviceSession(graph, 'cuda'), (err: unknown) => {
    assert.ok(err instanceof DeviceUnavailableError, `expected DeviceUnavailableError, got ${String(err)}`);
    assert.equal(err.device, 'cuda');
    assert.match(err.message, /^--device cuda is not usable here: /);
    assert.ok(err.problems.length > 0);
    // Each problem names a concrete piece: the provider, a CUDA library, the driver, or the GPU.
    for (const p of err.problems) {
      assert.match(p, /CUDA provider is not installed|CUDA 13 libraries are missing|libcuda\.so\.1 \(the NVIDIA driver\)|no NVIDIA GPU is visible|linux\/x64 only/);
    }
    assert.ok(err.problems.some((p) => /no NVIDIA GPU is visible/.test(p)));
    return true;
  });
});

test('webgpu either computes what the CPU does or fails with its own error', async () => {
  let session: ort.InferenceSession;
  try {
    session = await openDeviceSession(graph, 'webgpu');
  } catch (err) {
    assert.ok(err instanceof DeviceUnavailableError, `expected DeviceUnavailableError, got ${String(err)}`);
    assert.match(err.message, /^--device webgpu is not usable here: /);
    assert.match(err.message, /Vulkan|adapter/);
    return;
  }
  const cpu = await openDeviceSession(graph, 'cpu');
  const [a, b] = [await logitsOn(cpu), await logitsOn(session)];
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-3, `logit ${i}: cpu ${a[i]} webgpu ${b[i]}`);
  await Promise.all([cpu.release(), session.release()]);
});

test('a broken graph is reported as a graph error, not as a device problem', async () => {
  const bad = join(scratchDir(), 'missing.onnx');
  await assert.rejects(openDeviceSession(bad, 'cpu'), (err: unknown) => !(err instanceof DeviceUnavailableError));
});

test('device-probe: --device cuda exits 2 with the reason; a bad --device exits 1 naming it', { skip: gpuPresent && 'an NVIDIA GPU is present' }, () => {
  const cuda = spawnSync(process.execPath, [PROBE, '--device', 'cuda', '--model', graph], { encoding: 'utf8' });
  assert.equal(cuda.status, 2, cuda.stderr);
  assert.match(cuda.stderr, /device-probe: --device cuda is not usable here: /);
  const bad = spawnSync(process.execPath, [PROBE, '--device', 'tpu', '--model', graph], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--device: 'tpu' is not one of cpu, cuda, webgpu/);
});

test('device-probe on the cpu runs the graph at each batch size', () => {
  const r = spawnSync(process.execPath, [PROBE, '--device', 'cpu', '--model', graph, '--batch', '1,4', '--length', '8', '--runs', '2', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { results: Array<{ ok: boolean; batches: Array<{ batch: number; outputBytes: number }> }> };
  assert.equal(report.results.length, 1);
  assert.ok(report.results[0]!.ok);
  assert.deepEqual(report.results[0]!.batches.map((b) => b.batch), [1, 4]);
  // logits [B, 8, vocab] float32 leave the device on every call.
  assert.deepEqual(report.results[0]!.batches.map((b) => b.outputBytes), [1, 4].map((b) => b * 8 * DEVICE_GRAPH_VOCAB * 4));
});

test('device-probe on a model directory: every graph, FLOP/s from n_params and its share of a given peak', () => {
  const dir = scratchDir();
  copyFileSync(graph, join(dir, 'denoiser.onnx'));
  writeFileSync(join(dir, 'tokenizer.json'), '{}'); // the probe never tokenizes; the manifest requires the file
  const nParams = 5000;
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      format: 'dlm-serve.model/1',
      name: 'probe',
      family: 'mdlm',
      vocab_size: DEVICE_GRAPH_VOCAB,
      max_length: 32,
      special_tokens: { mask: DEVICE_GRAPH_VOCAB - 1 },
      architecture: { d_model: 16, n_layers: 1, n_heads: 1, head_dim: 16, n_params: nParams },
      noise: { type: 'masked', schedule: 'loglinear' },
      graphs: { denoiser: { file: 'denoiser.onnx', inputs: ['tokens'], outputs: ['logits'] } },
      samplers: ['ddpm'],
    }),
  );
  const r = spawnSync(process.execPath, [PROBE, '--device', 'cpu', '--model', dir, '--batch', '2', '--runs', '2', '--peak-tf32', '0.5', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { results: Array<{ role: string; batches: Array<{ length: number; medianMs: number; tflops: number; peakShare: number }> }> };
  assert.deepEqual(report.results.map((g) => g.role), ['denoiser']);
  const b = report.results[0]!.batches[0]!;
  assert.equal(b.length, 32); // max_length from the manifest
  assert.ok(Math.abs(b.tflops - (2 * nParams * 2 * 32) / (b.medianMs / 1e3) / 1e12) < 1e-9 * b.tflops + 1e-12);
  assert.ok(Math.abs(b.peakShare - b.tflops / 0.5) < 1e-12);
});
