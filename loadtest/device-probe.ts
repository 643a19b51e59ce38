// Runs every graph of a model (or one .onnx file) on a device, checks its outputs against the
// CPU, and times it at several batch sizes. It is the first thing to run on a new GPU machine:
// it needs only onnxruntime-node, not the engine or the server.
//
//   node dist/loadtest/device-probe.js --device cuda --model models/zoo/tiny-mdlm [--batch 1,8,32,64]
//     [--length 128] [--runs 10] [--json | --json-out FILE] [--peak-tf32 TFLOPS --peak-fp16 TFLOPS]
//     [--outputs a,b]   fetch only these outputs (e.g. the in-graph reductions of the logits)
// The peaks (dense, the GPU's datasheet) turn achieved TFLOP/s into a share of what the GPU can do.
//
// Exit codes: 0 all graphs ran and matched the CPU; 1 usage; 2 the device is not usable here
// (the message says which piece is missing); 3 a graph failed or disagreed with the CPU.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { Device } from '../engine/api.js';
import { DeviceUnavailableError } from '../engine/device-check.js';
import { executionProvidersFor, openDeviceSession } from '../engine/device-session.js';
import { loadModelDir } from '../engine/manifest.js';

const DEVICES: readonly Device[] = ['cpu', 'cuda', 'webgpu'];

interface GraphTarget {
  role: string;
  path: string;
}

interface BatchResult {
  batch: number;
  length: number;
  medianMs: number;
  /** Positions (batch x length) through the graph per second. */
  positionsPerSec: number;
  /** Bytes of outputs per call: what leaves the device when outputs are fetched to the host. */
  outputBytes: number;
  /** 2 x parameters x positions / time, when the manifest gives n_params. */
  tflops?: number;
  /** tflops as a share of the device's peak for the graph's precision, when given. */
  peakShare?: number;
  /**
   * GPU devices: median ms of the same call with every output left on the device
   * (preferredOutputLocation 'gpu-buffer'), and the share of the call the copy to the host took.
   */
  residentMs?: number;
  transferShare?: number;
}

interface GraphResult {
  role: string;
  file: string;
  ok: boolean;
  error?: string;
  /** Largest |device - cpu| over float outputs at batch 1, and the tolerance it was held to. */
  maxAbsDiff?: number;
  tolerance?: number;
  /** Why device-resident outputs could not be timed, when they could not. */
  residentError?: string;
  batches: BatchResult[];
}

function fail(code: number, message: string): never {
  process.stderr.write(`device-probe: ${message}\n`);
  process.exit(code);
}

function targetsOf(model: string): { targets: GraphTarget[]; vocab?: number; nParams?: number; maxLength?: number } {
  if (!existsSync(model)) fail(1, `--model ${model}: no such file or directory`);
  if (statSync(model).isFile()) return { targets: [{ role: basename(model, '.onnx'), path: model }] };
  const dir = loadModelDir(model);
  return {
    targets: Object.entries(dir.graphPaths).map(([role, path]) => ({ role, path })),
    vocab: dir.manifest.vocab_size,
    nParams: dir.manifest.architecture.n_params,
    maxLength: dir.manifest.max_length,
  };
}

/** Concrete shape for a graph input: symbolic batch axes get B, cache axes P, the rest L. */
function concreteShape(shape: ReadonlyArray<number | string>, batch: number, length: number, past: number): number[] {
  return shape.map((d, axis) => {
    if (typeof d === 'number' && d > 0) return d;
    const name = typeof d === 'string' ? d.toLowerCase() : '';
    if (axis === 0 || name.includes('batch')) return batch;
    if (name.includes('past') || name.includes('cache') || name.includes('prefix') || name.includes('ctx')) return past;
    return length;
  });
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeFeeds(session: ort.InferenceSession, batch: number, length: number, vocab: number): Record<string, ort.Tensor> {
  const rand = seeded(1234);
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const dims = concreteShape(meta.shape, batch, length, Math.max(1, length >> 1));
    const n = dims.reduce((a, b) => a * b, 1);
    // Token ids range over the vocabulary; other integers (positions, orders, offsets) over the length.
    const range = /token|ids/i.test(meta.name) ? vocab : length;
    switch (meta.type) {
      case 'int64':
        feeds[meta.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * range))), dims);
        break;
      case 'int32':
        feeds[meta.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(rand() * range)), dims);
        break;
      case 'float32':
        feeds[meta.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rand()), dims);
        break;
      case 'float16':
        // 0x3800 is 0.5 in IEEE half precision; small offsets keep values varied and finite.
        feeds[meta.name] = new ort.Tensor('float16', Uint16Array.from({ length: n }, () => 0x3800 + Math.floor(rand() * 64)), dims);
        break;
      case 'bool':
        // Masks: everything visible.
        feeds[meta.name] = new ort.Tensor('bool', new Uint8Array(n).fill(1), dims);
        break;
      default:
        throw new Error(`input ${meta.name} has type ${meta.type}, which the probe cannot synthesise`);
    }
  }
  return feeds;
}

function floatView(t: ort.Tensor): Float32Array | undefined {
  return t.type === 'float32' ? (t.data as Float32Array) : undefined;
}

function compare(cpu: ort.InferenceSession.OnnxValueMapType, dev: ort.InferenceSession.OnnxValueMapType): { maxAbsDiff: number; scale: number } {
  let maxAbsDiff = 0;
  let scale = 0;
  for (const [name, value] of Object.entries(cpu)) {
    const a = floatView(value as ort.Tensor);
    const b = floatView(dev[name] as ort.Tensor);
    if (!a || !b) continue;
    for (let i = 0; i < a.length; i++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(a[i]!));
    }
  }
  return { maxAbsDiff, scale };
}

function outputBytes(out: ort.InferenceSession.OnnxValueMapType): number {
  let bytes = 0;
  for (const v of Object.values(out)) bytes += (v as ort.Tensor).data instanceof ArrayBuffer ? 0 : ((v as ort.Tensor).data as ArrayBufferView).byteLength;
  return bytes;
}

async function medianMs(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number, fetches?: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = process.hrtime.bigint();
    const out = fetches ? await session.run(feeds, fetches) : await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // Device-resident outputs hold GPU memory until disposed; host ones are plain arrays.
    for (const v of Object.values(out)) (v as ort.Tensor).dispose?.();
    if (i >= 2) times.push(ms); // the first two calls warm up kernels and allocators
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

async function probeGraph(
  target: GraphTarget,
  device: Device,
  opts: { batches: number[]; length: number; runs: number; vocab: number; nParams?: number; peakTf32?: number; peakFp16?: number; fetches?: string[] },
): Promise<GraphResult> {
  const result: GraphResult = { role: target.role, file: target.path, ok: false, batches: [] };
  const session = await openDeviceSession(target.path, device);
  try {
    if (device !== 'cpu') {
      const cpu = await openDeviceSession(target.path, 'cpu');
      const feeds = makeFeeds(cpu, 1, opts.length, opts.vocab);
      const { maxAbsDiff, scale } = compare(await cpu.run(feeds), await session.run(feeds));
      await cpu.release();
      // GPU matmuls may use TF32 (10-bit mantissa): hold them to 1% of the output's magnitude.
      result.maxAbsDiff = maxAbsDiff;
      result.tolerance = 1e-2 * Math.max(1, scale);
      if (!(maxAbsDiff <= result.tolerance)) {
        result.error = `outputs differ from the CPU by ${maxAbsDiff.toExponential(3)} (tolerance ${result.tolerance.toExponential(3)})`;
        return result;
      }
    }
    // The same graph with every output left on the device: what a step costs without the copy.
    let resident: ort.InferenceSession | undefined;
    if (device !== 'cpu') {
      try {
        resident = await ort.InferenceSession.create(target.path, { executionProviders: executionProvidersFor(device), preferredOutputLocation: 'gpu-buffer' });
      } catch (err) {
        result.residentError = (err as Error).message.split('\n')[0];
      }
    }
    for (const batch of opts.batches) {
      const feeds = makeFeeds(session, batch, opts.length, opts.vocab);
      const bytes = outputBytes(opts.fetches ? await session.run(feeds, opts.fetches) : await session.run(feeds));
      const ms = await medianMs(session, feeds, opts.runs, opts.fetches);
      const positions = batch * opts.length;
      const row: BatchResult = { batch, length: opts.length, medianMs: ms, positionsPerSec: positions / (ms / 1e3), outputBytes: bytes };
      if (opts.nParams) row.tflops = (2 * opts.nParams * positions) / (ms / 1e3) / 1e12;
      // fp16 graphs run on the half-precision tensor cores; fp32 ones on TF32 at best.
      const half = [...session.inputMetadata, ...session.outputMetadata].some((m) => m.isTensor && m.type === 'float16');
      const peak = half ? opts.peakFp16 : opts.peakTf32;
      if (row.tflops !== undefined && peak) row.peakShare = row.tflops / peak;
      if (resident && !result.residentError) {
        try {
          row.residentMs = await medianMs(resident, feeds, opts.runs, opts.fetches);
          row.transferShare = Math.max(0, 1 - row.residentMs / ms);
        } catch (err) {
          result.residentError = (err as Error).message.split('\n')[0];
        }
      }
      result.batches.push(row);
    }
    await resident?.release();
    result.ok = true;
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
  } finally {
    await session.release();
  }
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: 'cpu' },
      model: { type: 'string' },
      batch: { type: 'string', default: '1,8,32,64' },
      length: { type: 'string' },
      runs: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      'json-out': { type: 'string' },
      outputs: { type: 'string' },
      'peak-tf32': { type: 'string' },
      'peak-fp16': { type: 'string' },
    },
  });
  const device = values.device as Device;
  if (!DEVICES.includes(device)) fail(1, `--device: '${values.device}' is not one of ${DEVICES.join(', ')}`);
  if (!values.model) fail(1, '--model DIR|FILE.onnx is required');
  const batches = values.batch.split(',').map(Number);
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) fail(1, `--batch: '${values.batch}' is not a list of positive integers`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) fail(1, `--runs: '${values.runs}' is not a positive integer`);
  const model = targetsOf(values.model);
  const length = values.length ? Number(values.length) : Math.min(model.maxLength ?? 128, 128);
  if (!Number.isInteger(length) || length < 1) fail(1, `--length: '${values.length}' is not a positive integer`);

  const results: GraphResult[] = [];
  for (const target of model.targets) {
    try {
      results.push(
        await probeGraph(target, device, {
          batches,
          length,
          runs,
          vocab: model.vocab ?? 2,
          nParams: model.nParams,
          peakTf32: values['peak-tf32'] ? Number(values['peak-tf32']) : undefined,
          peakFp16: values['peak-fp16'] ? Number(values['peak-fp16']) : undefined,
          fetches: values.outputs ? values.outputs.split(',') : undefined,
        }),
      );
    } catch (err) {
      if (err instanceof DeviceUnavailableError) fail(2, err.message);
      results.push({ role: target.role, file: target.path, ok: false, error: (err as Error).message.split('\n')[0], batches: [] });
    }
  }
  const report = JSON.stringify({ device, model: values.model, results });
  if (values['json-out']) writeFileSync(values['json-out'], report + '\n');
  if (values.json) {
    process.stdout.write(report + '\n');
  } else {
    for (const r of results) {
      const diff = r.maxAbsDiff === undefined ? '' : ` max|dev-cpu| ${r.maxAbsDiff.toExponential(2)}`;
      process.stdout.write(`${device} ${r.role} (${r.file}): ${r.ok ? 'ok' : `FAILED: ${r.error}`}${diff}\n`);
      if (r.residentError) process.stdout.write(`  outputs left on the device: not measured (${r.residentError})\n`);
      for (const b of r.batches) {
        process.stdout.write(
          `  batch ${String(b.batch).padStart(3)} x ${b.length}: ${b.medianMs.toFixed(3)} ms, ${Math.round(b.positionsPerSec)} positions/s, ` +
            `${(b.outputBytes / 2 ** 20).toFixed(2)} MiB out${b.tflops === undefined ? '' : `, ${b.tflops.toFixed(2)} TFLOP/s`}` +
            (b.peakShare === undefined ? '' : ` (${(100 * b.peakShare).toFixed(1)}% of peak)`) +
            (b.residentMs === undefined ? '' : `; outputs left on the device: ${b.residentMs.toFixed(3)} ms (the copy out is ${(100 * b.transferShare!).toFixed(0)}% of the call)`) +
            '\n',
        );
      }
    }
  }
  process.exit(results.every((r) => r.ok) ? 0 : 3);
}

await main();
