// `npm run bench:session-start`: what ONNX Runtime's session options cost at start and what
// they give back per call, on the default model's denoiser. Each variant opens the session in a
// fresh process (as a start does), then times calls at a start's first shape (one row of 32) and
// at a busy one (8 rows of 128), and sums its logits so that a variant that changes the output
// shows it. Variants interleave round by round; ratios are against `all`, what a start without
// the optimised-graph cache runs; the last variant is what a start with it runs.
// CPU time is the process's (all threads): on a loaded machine wall time stretches, work less.
//   npm run bench:session-start -- [--runs 5] [--model DIR] [--threads N]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadModelDir } from '../engine/manifest.js';
import { MAPPED_ORT_MODEL, optimizedPath } from '../engine/optimized-cache.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Variant {
  name: string;
  level: 'disabled' | 'basic' | 'extended' | 'all';
  /** ONNX Runtime session config entries, without the `session.` prefix (onnxruntime-node adds it). */
  config?: Readonly<Record<string, string>>;
  /** Opens the optimised graph that --ort-cache keeps (written before the rounds) instead. */
  cached?: true;
}

const VARIANTS: Variant[] = [
  { name: 'all', level: 'all' },
  { name: 'extended', level: 'extended' },
  { name: 'basic', level: 'basic' },
  { name: 'all, no prepacking', level: 'all', config: { disable_prepacking: '1' } },
  // No optimisation at all: the fp16 weights are cast to fp32 on every call.
  { name: 'disabled', level: 'disabled' },
  // What a start with the optimised-graph cache does: `all`'s graph, mapped, no passes.
  { name: 'all, mapped from the cache', level: 'disabled', config: MAPPED_ORT_MODEL, cached: true },
];

const SHAPES: Array<[rows: number, len: number, calls: number]> = [[1, 32, 20], [8, 128, 4]];

interface Sample {
  createMs: number;
  createCpuMs: number;
  firstCallMs: number;
  /** Median call, per shape. */
  callMs: number[];
  /** Median call's CPU time (all threads: with more than one, the pool's spinning counts too), per shape. */
  callCpuMs: number[];
  /** Weighted logit sums, per shape (identical output, identical sums). */
  sums: number[];
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function child(graph: string, v: Variant, threads: number | undefined, cacheDir: string): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(v.cached ? optimizedPath(graph, cacheDir, 'all') : graph, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: v.level,
    ...(threads !== undefined ? { intraOpNumThreads: threads } : {}),
    ...(v.config ? { extra: { session: v.config } } : {}),
  });
  const createMs = performance.now() - t0;
  const createCpuMs = cpuMs() - c0;
  const out: Sample = { createMs, createCpuMs, firstCallMs: NaN, callMs: [], callCpuMs: [], sums: [] };
  for (const [rows, len, calls] of SHAPES) {
    const n = rows * len;
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const data = name === 'tokens' ? BigInt64Array.from({ length: n }, (_, i) => BigInt(4 + ((i * 7919) % 4000))) : new BigInt64Array(n).fill(1n);
      feeds[name] = new ort.Tensor('int64', data, [rows, len]);
    }
    const f0 = performance.now();
    let result = await session.run(feeds);
    if (Number.isNaN(out.firstCallMs)) out.firstCallMs = performance.now() - f0;
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < calls; i++) {
      const c = performance.now();
      const u = cpuMs();
      result = await session.run(feeds);
      times.push(performance.now() - c);
      cpu.push(cpuMs() - u);
    }
    out.callMs.push(median(times));
    out.callCpuMs.push(median(cpu));
    const logits = result[session.outputNames[0]!]!.data as Float32Array;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += logits[i]! * ((i % 13) - 6);
    out.sums.push(sum);
  }
  await session.release();
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, model: { type: 'string' }, threads: { type: 'string' }, child: { type: 'string' }, cache: { type: 'string' } } });
  const threads = values.threads !== undefined ? Number(values.threads) : undefined;
  const dir = loadModelDir(resolve(values.model ?? join(ROOT, 'models/zoo/default')));
  const graph = dir.graphPaths.denoiser;
  if (!graph) throw new Error(`${dir.manifest.name} has no denoiser graph`);
  if (values.child !== undefined) {
    process.stdout.write(JSON.stringify(await child(graph, VARIANTS[Number(values.child)]!, threads, values.cache!)));
    return;
  }
  const runs = Number(values.runs ?? 5);
  const cacheDir = mkdtempSync(join(tmpdir(), 'dlm-session-start-'));
  const writer = spawnSync(process.execPath, [join(ROOT, 'dist/engine/ort-cache-writer.js'), graph, optimizedPath(graph, cacheDir, 'all'), 'all'], { encoding: 'utf8' });
  if (writer.status !== 0) throw new Error(`writing the optimised graph failed: ${writer.stderr}`);
  try {
    await rounds(runs, threads, values.model, cacheDir, dir.manifest.name);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

async function rounds(runs: number, threads: number | undefined, model: string | undefined, cacheDir: string, name: string): Promise<void> {
  const samples = VARIANTS.map((): Sample[] => []);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + round) % VARIANTS.length;
      const args = [fileURLToPath(import.meta.url), '--child', String(i), '--cache', cacheDir, ...(model ? ['--model', model] : []), ...(threads !== undefined ? ['--threads', String(threads)] : [])];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`variant ${VARIANTS[i]!.name} failed: ${r.stderr}`);
      samples[i]!.push(JSON.parse(r.stdout) as Sample);
    }
    process.stderr.write(`round ${round + 1}/${runs}\n`);
  }
  const med = (i: number, pick: (s: Sample) => number): number => median(samples[i]!.map(pick));
  console.log(`session start, ${name} denoiser, ${runs} fresh processes per variant${threads !== undefined ? `, ${threads} threads` : ''}; medians, ratio: all's time / the variant's`);
  console.log('| variant | create ms | create CPU ms | first call ms | 1x32 call ms | 8x128 call ms | 8x128 call CPU ms | output |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---|');
  const ref = samples[0]![0]!.sums;
  VARIANTS.forEach((v, i) => {
    const cell = (pick: (s: Sample) => number): string => `${med(i, pick).toFixed(1)} x${(med(0, pick) / med(i, pick)).toFixed(2)}`;
    const same = samples[i]!.every((s) => s.sums.every((x, j) => Math.abs(x - ref[j]!) <= 1e-6 * Math.max(1, Math.abs(ref[j]!))));
    const worst = Math.max(...samples[i]!.flatMap((s) => s.sums.map((x, j) => Math.abs(x - ref[j]!) / Math.max(1, Math.abs(ref[j]!)))));
    console.log(`| ${v.name} | ${cell((s) => s.createMs)} | ${cell((s) => s.createCpuMs)} | ${cell((s) => s.firstCallMs)} | ${cell((s) => s.callMs[0]!)} | ${cell((s) => s.callMs[1]!)} | ${cell((s) => s.callCpuMs[1]!)} | ${same ? 'same as all' : `differs (rel. ${worst.toExponential(1)})`} |`);
  });
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench:session-start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
