// int8 against fp32, in one run (the two take turns round by round, the order flipping each
// round, so machine load falls on both): ONNX Runtime's MatMul ceiling at both precisions, at
// the default model's own products and as the best burst; end-to-end tokens/s through the
// engine process for the default model, BD3-LM, E2D2 and ASSD at batch 1 and 16, each engine
// warmed up at the measured shape, reported as the median over rounds with its spread and each
// round's own int8/fp32 ratio; what the batched decode achieves against both ceilings; a step's
// time inside and outside the graph in-process, against the same step through the engine
// process; model file sizes and the engine process's memory; and the engine against MDLM's
// PyTorch sampling loop (models/dlm/torch_loop.py: batch 1, one forward per step, the same
// weights recovered from the ONNX file, the same sampler and steps), runs bracketing the engine's.
//
//   npm run bench:int8 -- [--rounds 5] [--steps 16] [--threads N] [--batches 1,16]
//                         [--only default,bd3lm,e2d2,assd,torch,int4,step]
//                         [--out .work/bench-int8]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../engine/device-session.js';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startEngine } from '../engine/client.js';
import { DirectRunner } from '../engine/direct-runner.js';
import { familyOf } from '../engine/families/registry.js';
import { loadModelDir, type Precision } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { ditShape, modelProducts, rowFlops } from './flops.js';
import { measureMatmulCeiling, type MatmulCeiling } from './matmul-ceiling.js';
import { writeJson } from './report.js';
import { timedRunner } from './timed-runner.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '16' },
    threads: { type: 'string' },
    only: { type: 'string' },
    batches: { type: 'string', default: '1,16' },
    out: { type: 'string', default: '.work/bench-int8' },
  },
  strict: true,
});

const ZOO = resolve('models/zoo');
const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

interface Case { label: string; model: string; batch: number; maxTokens: number; sampler?: string }

const CASES: Case[] = [
  { label: 'default', model: 'default', batch: 1, maxTokens: 64 },
  { label: 'default', model: 'default', batch: 1, maxTokens: 256 },
  { label: 'default', model: 'default', batch: 16, maxTokens: 64 },
  { label: 'default', model: 'default', batch: 16, maxTokens: 256 },
  { label: 'bd3lm', model: 'bd3lm-brown', batch: 1, maxTokens: 64 },
  { label: 'bd3lm', model: 'bd3lm-brown', batch: 16, maxTokens: 64 },
  { label: 'e2d2', model: 'e2d2-brown', batch: 1, maxTokens: 64 },
  { label: 'e2d2', model: 'e2d2-brown', batch: 16, maxTokens: 64 },
  { label: 'assd', model: 'asarm-brown', batch: 1, maxTokens: 64, sampler: 'assd' },
  { label: 'assd', model: 'asarm-brown', batch: 16, maxTokens: 64, sampler: 'assd' },
];

/** Resident and peak memory of this process's children (the engine), from /proc, in MiB. */
function childMemory(): { rssMb: number; peakMb: number } {
  const kids = readdirSync('/proc/self/task').flatMap((t) => readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
  let rss = 0, peak = 0;
  for (const pid of kids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      peak += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    } catch { /* a child that has just exited */ }
  }
  return { rssMb: rss, peakMb: peak };
}

/** One precision's turns at a case: each round's tokens/s, calls and rows, and its engine's memory. */
interface Turns { tokensPerSecond: number[]; msPerCall: number[]; rowsPerSecond: number[]; rssMb: number; peakMb: number }

/** The median of a list (the mean of the middle two when even). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** `median [min-max]` of a list. */
function spread(xs: readonly number[], digits = 1): string {
  return `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;
}

/**
 * The two precisions' engines (each its own engine process, as `npm start` runs it) take turns
 * at one case, round by round, the order flipping each round so that neither always follows
 * the other. Before the counted rounds each engine runs the measured request set itself once
 * (same batch, same maxTokens): a warm-up at another shape leaves ONNX Runtime's first run at
 * this shape (its allocations, the binding's buffers) inside the first counted round.
 */
async function endToEnd(c: Case, rounds: number, steps: number, threads: number | undefined): Promise<Record<Precision, Turns>> {
  const dir = join(ZOO, c.model);
  const res = {} as Record<Precision, Turns>;
  const engines = [];
  for (const p of PRECISIONS) {
    // One engine at a time while it starts, so that each child's memory is its own.
    const before = childMemory();
    const engine = await startEngine({ modelDir: dir, device: 'cpu', precision: p, threads, maxBatch: c.batch, maxQueue: 64 });
    const mem = childMemory();
    engines.push(engine);
    res[p] = { tokensPerSecond: [], msPerCall: [], rowsPerSecond: [], rssMb: mem.rssMb - before.rssMb, peakMb: mem.peakMb - before.peakMb };
  }
  // r = -1 warms both up at the measured shapes and is not counted.
  for (let r = -1; r < rounds; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const engine = engines[i]!;
      const p = PRECISIONS[i]!;
      const d = engine.model.defaults;
      const params: Omit<GenerationParams, 'seed'> = {
        ...d, sampler: c.sampler ?? d.sampler, steps: Math.min(steps, d.steps), maxTokens: c.maxTokens,
        ignoreEos: true, stopTokenIds: [], streamSteps: false,
      };
      // The engine pushes each tick's calls; collect this round's only.
      const batchSizes: number[] = [];
      const unfollow = engine.onStats((st) => batchSizes.push(...st.batchSizes));
      const t0 = performance.now();
      const tokens = await Promise.all(Array.from({ length: c.batch }, (_, s) => new Promise<number>((done, fail) => {
        let n = 0;
        engine.generate([], { ...params, seed: 100 * (r + 1) + s }, { commit: (t) => (n += t.length), error: (e) => fail(new Error(e.message)), done: () => done(n) });
      })));
      const seconds = (performance.now() - t0) / 1000;
      unfollow();
      if (r < 0) continue;
      const t = res[p];
      t.tokensPerSecond.push(tokens.reduce((a, b) => a + b, 0) / seconds);
      t.msPerCall.push((1000 * seconds) / batchSizes.length);
      t.rowsPerSecond.push(batchSizes.reduce((a, b) => a + b, 0) / seconds);
    }
  }
  for (const e of engines) await e.close();
  return res;
}

/** Each round's int8 / fp32 (the two ran next to each other, so they saw the same load). */
function pairedRatios(r: Record<Precision, Turns>): number[] {
  return r.int8.tokensPerSecond.map((x, i) => x / r.fp32.tokensPerSecond[i]!);
}

/** In-process turns at one shape: each round's graph and around-the-graph ms per network call. */
interface StepTurns { graphMs: number[]; aroundMs: number[] }

/**
 * A step's wall time split into the graph (session.run) and everything around it, in-process
 * (DirectRunner: the scheduler, samplers and sessions in this thread, no engine process), the
 * precisions taking turns as endToEnd's do, after a warm-up at the same shape.
 */
async function breakdown(model: string, batch: number, maxTokens: number, steps: number, rounds: number, threads: number | undefined): Promise<Record<Precision, StepTurns>> {
  const out = {} as Record<Precision, StepTurns>;
  const runners = await Promise.all(PRECISIONS.map((p) => DirectRunner.open(join(ZOO, model), threads, p)));
  const m = runners[0]!.dir.manifest;
  const family = familyOf(m)!;
  for (const p of PRECISIONS) out[p] = { graphMs: [], aroundMs: [] };
  for (let r = -1; r < rounds; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const { runner: timed, time } = timedRunner(runners[i]!.runner);
      const d = m.defaults;
      const params: GenerationParams = {
        sampler: d.sampler ?? m.samplers[0]!, steps: Math.min(steps, d.steps ?? steps), maxTokens, temperature: d.temperature ?? 1, topP: d.top_p ?? 1, topK: d.top_k ?? 0,
        seed: 1, ignoreEos: true, stopTokenIds: [], streamSteps: false,
      };
      const t0 = performance.now();
      await runners[i]!.run(family, Array.from({ length: batch }, () => []), Array.from({ length: batch }, (_, s) => ({ ...params, seed: 100 * (r + 1) + s })), { maxBatch: batch, runner: timed, cache: runners[i]!.newCache(family) });
      const wall = performance.now() - t0;
      if (r < 0) continue;
      const o = out[PRECISIONS[i]!];
      o.graphMs.push(time.ms / time.calls); o.aroundMs.push((wall - time.ms) / time.calls);
    }
  }
  for (const rr of runners) await rr.close();
  return out;
}

/** tokens/s of models/dlm/torch_loop.py on the default model (Debian's torch 1.13). */
function torchLoop(tokens: number, steps: number, runs: number, threads: number): number {
  const r = spawnSync(process.env.DLM_PYTHON ?? '/usr/bin/python3', ['-m', 'dlm.torch_loop', '--model', 'zoo/default', '--tokens', String(tokens), '--steps', String(steps), '--runs', String(runs), '--threads', String(threads)], { cwd: resolve('models'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_loop failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_per_second: number }).tokens_per_second;
}

async function torchVsEngine(steps: number, threads: number | undefined): Promise<{ torch: number; fp32: number; int8: number }> {
  const tokens = 64, runs = 3;
  const t1 = torchLoop(tokens, steps, runs, threads ?? 2);
  const r = await endToEnd({ label: 'torch', model: 'default', batch: 1, maxTokens: tokens, sampler: 'ddpm' }, runs, steps, threads);
  const t2 = torchLoop(tokens, steps, runs, threads ?? 2);
  return { torch: (t1 + t2) / 2, fp32: median(r.fp32.tokensPerSecond), int8: median(r.int8.tokensPerSecond) };
}

/**
 * 4-bit weights (quantize.py --bits 4: MatMulNBits, blocks of 32, int8 compute) on the default,
 * written to a temporary folder (not shipped): one forward at two shapes against fp32 and the
 * served int8, taking turns, and each one's drift from fp32 on the same real-looking input.
 */
async function int4Probe(threads: number | undefined): Promise<{ shape: number[]; ms: Record<string, number>; maxDiff: Record<string, number>; top1: Record<string, number> }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-int4-'));
  const int4 = join(dir, 'denoiser.int4.onnx');
  const r = spawnSync(process.env.DLM_PYTHON ?? '/usr/bin/python3', ['-m', 'dlm.quantize', join(ZOO, 'default', 'denoiser.onnx'), int4, '--bits', '4'], { cwd: resolve('models'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`quantize --bits 4 failed: ${r.stderr}`);
  const md = loadModelDir(join(ZOO, 'default'));
  const o = threads !== undefined ? { threads } : {};
  const sessions: Record<string, ort.InferenceSession> = {
    fp32: await openDeviceSession(md.graphPaths.denoiser!, 'cpu', o),
    int8: await openDeviceSession(md.variantPaths.denoiser!.int8!, 'cpu', o),
    int4: await openDeviceSession(int4, 'cpu', o),
  };
  const V = md.manifest.vocab_size, mask = md.manifest.special_tokens.mask!;
  const out = [];
  for (const [B, L] of [[1, 72], [16, 72]] as const) {
    // Half the positions masked, the rest ordinary ids, as mid-way through decoding.
    const tokens = BigInt64Array.from({ length: B * L }, (_, i) => BigInt(i % 2 === 0 ? mask : 4 + ((i * 7919) % (V - 4))));
    const feeds = { tokens: new ort.Tensor('int64', tokens, [B, L]), attention_mask: new ort.Tensor('int64', new BigInt64Array(B * L).fill(1n), [B, L]) };
    const ms: Record<string, number> = {}, maxDiff: Record<string, number> = {}, top1: Record<string, number> = {};
    const logits: Record<string, Float32Array> = {};
    for (const [k, s] of Object.entries(sessions)) logits[k] = (await s.run(feeds)).logits!.data as Float32Array;
    for (let round = 0; round < 3; round++) {
      for (const [k, s] of Object.entries(sessions)) {
        const t = performance.now();
        await s.run(feeds);
        ms[k] = Math.min(ms[k] ?? Infinity, performance.now() - t);
      }
    }
    for (const k of Object.keys(sessions)) {
      const a = logits.fp32!, b = logits[k]!;
      let md2 = 0, agree = 0, n = 0;
      for (let p = 0; p < B * L; p += 2) { // the masked positions
        let ia = 0, ib = 0;
        for (let v = 0; v < V; v++) {
          if (v === mask) continue;
          md2 = Math.max(md2, Math.abs(a[p * V + v]! - b[p * V + v]!));
          if (a[p * V + v]! > a[p * V + ia]!) ia = v;
          if (b[p * V + v]! > b[p * V + ib]!) ib = v;
        }
        n++; if (ia === ib) agree++;
      }
      maxDiff[k] = md2; top1[k] = agree / n;
    }
    out.push({ shape: [B, L], ms, maxDiff, top1 });
  }
  for (const s of Object.values(sessions)) await s.release();
  return out;
}

function sizes(): { model: string; fp32Mb: number; int8Mb: number; derived: boolean }[] {
  return readdirSync(ZOO).flatMap((name) => {
    const md = loadModelDir(join(ZOO, name));
    const roles = Object.keys(md.variantPaths).filter((r) => md.variantPaths[r]!.int8);
    if (roles.length === 0) return [];
    const mb = (p: string): number => statSync(p).size / 1e6;
    return [{
      model: name,
      fp32Mb: roles.reduce((a, r) => a + mb(md.graphPaths[r]!), 0),
      int8Mb: roles.reduce((a, r) => a + mb(md.variantPaths[r]!.int8!), 0),
      derived: roles.some((r) => md.manifest.graphs[r]!.variants.int8?.source_sha256 !== undefined),
    }];
  });
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const steps = Number(values.steps);
  const threads = values.threads ? Number(values.threads) : undefined;
  const only = values.only?.split(',');
  const def = loadModelDir(join(ZOO, 'default')).manifest;
  const shape = ditShape(def);
  const ceil = { seconds: 0.3, bursts: 3, ...(threads !== undefined ? { threads } : {}) };
  // Two ceilings per precision. At the model's own shapes: every weight product the default's
  // graph runs at batch 1 and at batch 16 (rows = batch x 65 positions at 64 tokens), each
  // timed alone; the ceiling there is their FLOP-weighted harmonic mean (the time the graph's
  // products would take, each at its own best rate), what the graph could reach if nothing but
  // its products cost time. The best burst: the best over those and 1024^3, a product with
  // more work per activation quantized than any this model runs.
  const L64 = 65;
  const products = modelProducts(shape);
  const rowsOf = [1, 16].map((b) => b * L64);
  const shapes: [number, number, number][] = [...rowsOf.flatMap((m) => products.map((x) => [m, x.k, x.n] as [number, number, number])), [1024, 1024, 1024]];
  // A ceiling is a peak and the machine is shared: measured before the end-to-end cases and
  // again after them, the best of the two per shape counts (printed after the cases).
  const measureBoth = async (): Promise<[MatmulCeiling, MatmulCeiling]> =>
    [await measureMatmulCeiling(shapes, ceil), await measureMatmulCeiling(shapes, { ...ceil, int8: true })];
  const first = await measureBoth();

  const sz = sizes();
  console.log('\nmodel files (graphs with an int8 variant), MB: fp32 -> int8');
  for (const s of sz) console.log(`  ${s.model.padEnd(12)} ${s.fp32Mb.toFixed(2).padStart(6)} -> ${s.int8Mb.toFixed(2).padStart(6)}${s.derived ? '  (derived: reads the fp32 file\'s weights, folds them at session creation)' : ''}`);

  console.log(`\nend to end through the engine process, a warm-up at the measured shape then ${rounds} rounds, fp32 and int8 taking turns; steps ${steps} (or the model's default if fewer); unconditional, ignore_eos`);
  console.log('tok/s: median [min-max] over rounds; int8/fp32: of the medians, then each round\'s own ratio, median [min-max]');
  console.log('case                  fp32 tok/s              int8 tok/s              int8/fp32  per round             engine ms/call fp32 / int8   RSS MiB fp32 / int8 (peak)');
  const e2e = [];
  const decodes: { entry: Record<string, unknown>; name: string; rows: number; gops: Record<Precision, number[]> }[] = [];
  for (const c of CASES) {
    if ((only && !only.includes(c.label)) || !values.batches!.split(',').map(Number).includes(c.batch)) continue;
    const r = await endToEnd(c, rounds, steps, threads);
    const paired = pairedRatios(r);
    const med = { fp32: median(r.fp32.tokensPerSecond), int8: median(r.int8.tokensPerSecond) };
    const entry: Record<string, unknown> = { ...c, ...r, medianTokensPerSecond: med, ratioOfMedians: med.int8 / med.fp32, pairedRatios: paired };
    e2e.push(entry);
    const name = `${c.label} b${c.batch} ${c.maxTokens} tok`;
    console.log(`${name.padEnd(21)} ${spread(r.fp32.tokensPerSecond).padEnd(23)} ${spread(r.int8.tokensPerSecond).padEnd(23)} ${`x${(med.int8 / med.fp32).toFixed(2)}`.padEnd(10)} ${spread(paired, 2).padEnd(21)} ${median(r.fp32.msPerCall).toFixed(1)} / ${median(r.int8.msPerCall).toFixed(1)}`.padEnd(150).trimEnd()
      + `   ${r.fp32.rssMb.toFixed(0)} (${r.fp32.peakMb.toFixed(0)}) / ${r.int8.rssMb.toFixed(0)} (${r.int8.peakMb.toFixed(0)})`);
    if (c.model === 'default' && c.batch > 1 && c.maxTokens <= 128) {
      // Rows per call are exact here: every sequence is the same length (BOS + the tokens),
      // unconditional, in one window (256 tokens take two windows of different row lengths).
      // The FLOPs count every matmul of a row, attention's too (2% of them; fp32 in both variants).
      const flops = rowFlops(shape, c.maxTokens + 1);
      const rows = c.batch * (c.maxTokens + 1);
      decodes.push({ entry, name, rows, gops: Object.fromEntries(PRECISIONS.map((p) => [p, r[p].rowsPerSecond.map((x) => (x * flops) / 1e9)])) as Record<Precision, number[]> });
    }
  }

  const second = await measureBoth();
  const best = (x: MatmulCeiling, y: MatmulCeiling): MatmulCeiling => {
    const points = x.points.map((q, i) => ({ ...q, gflops: Math.max(q.gflops, y.points[i]!.gflops) }));
    return { gflops: Math.max(...points.map((q) => q.gflops)), points };
  };
  const fp32Ceiling = best(first[0], second[0]);
  const int8Ceiling = best(first[1], second[1]);
  const atShapes = (c: MatmulCeiling, rows: number): number => {
    let flops = 0, seconds = 0;
    for (const x of products) {
      const f = 2 * rows * x.k * x.n * x.count;
      flops += f;
      seconds += f / (c.points.find((q) => q.m === rows && q.k === x.k && q.n === x.n)!.gflops * 1e9);
    }
    return flops / seconds / 1e9;
  };
  const ceilings = Object.fromEntries(PRECISIONS.map((p) => {
    const c = p === 'int8' ? int8Ceiling : fp32Ceiling;
    const at: Record<string, number> = { best: c.gflops };
    for (const m of rowsOf) at[`rows${m}`] = atShapes(c, m);
    return [p, at];
  })) as Record<Precision, Record<string, number>>;
  console.log('\nMatMul ceiling (best of 3 bursts before the cases and 3 after), fp32 GFLOP/s vs int8 GOP/s (DynamicQuantizeMatMul, constant int8 B, as the variants run it):');
  fp32Ceiling.points.forEach((p, i) => {
    const q = int8Ceiling.points[i]!;
    console.log(`  ${p.m}x${p.k}x${p.n}: fp32 ${p.gflops.toFixed(1)}  int8 ${q.gflops.toFixed(1)}  (x${(q.gflops / p.gflops).toFixed(2)})`);
  });
  for (const m of rowsOf) {
    console.log(`  at the default's own products, ${m} rows (batch ${m / L64}): fp32 ${ceilings.fp32[`rows${m}`]!.toFixed(1)}, int8 ${ceilings.int8[`rows${m}`]!.toFixed(1)} (x${(ceilings.int8[`rows${m}`]! / ceilings.fp32[`rows${m}`]!).toFixed(2)})`);
  }
  console.log(`  best burst: fp32 ${fp32Ceiling.gflops.toFixed(1)}, int8 ${int8Ceiling.gflops.toFixed(1)} (x${(int8Ceiling.gflops / fp32Ceiling.gflops).toFixed(2)})`);

  for (const d of decodes) {
    const decode: Record<string, unknown> = {};
    for (const p of PRECISIONS) {
      const g = d.gops[p];
      const own = ceilings[p][`rows${d.rows}`], top = ceilings[p].best!;
      decode[p] = { gops: g, ownCeiling: own ?? null, bestCeiling: top };
      console.log(`  batched decode, ${d.name}, ${p}: ${spread(g)} G(FL)OP/s = ${own !== undefined ? `${((100 * median(g)) / own).toFixed(0)}% of the ${p} ceiling at the model's own products, ` : ''}${((100 * median(g)) / top).toFixed(0)}% of the ${p} best burst`);
    }
    d.entry.batchedDecode = decode;
  }

  let torch = null;
  if (!only || only.includes('torch')) {
    torch = await torchVsEngine(steps, threads);
    console.log(`\nthe default, batch 1, ddpm ${steps} steps, 64 tokens: PyTorch loop ${torch.torch.toFixed(1)} tok/s (mean of the runs before and after);`
      + ` engine fp32 ${torch.fp32.toFixed(1)} (x${(torch.fp32 / torch.torch).toFixed(2)}), int8 ${torch.int8.toFixed(1)} (x${(torch.int8 / torch.torch).toFixed(2)})`);
  }

  let int4 = null;
  if (!only || only.includes('int4')) {
    int4 = await int4Probe(threads);
    console.log('\n4-bit weights (MatMulNBits, block 32, not shipped) on the default, one forward, best of 3 taking turns; drift from fp32 at masked positions:');
    for (const p of int4) {
      console.log(`  [${p.shape.join(', ')}]: ` + ['fp32', 'int8', 'int4'].map((k) => `${k} ${p.ms[k]!.toFixed(0)} ms`).join(', ')
        + ` | max |diff| int8 ${p.maxDiff.int8!.toFixed(2)}, int4 ${p.maxDiff.int4!.toFixed(2)}; top-1 int8 ${p.top1.int8!.toFixed(3)}, int4 ${p.top1.int4!.toFixed(3)}`);
    }
  }

  console.log(`\none step of the default in-process (no engine process, no IPC), 64 tokens, ${rounds} rounds after a warm-up, ms per network call, median [min-max]: graph (session.run) + around it (sampler, batching, copies)`);
  const steps64 = [];
  for (const batch of only && !only.includes('step') ? [] : [1, 16]) {
    const b = await breakdown('default', batch, 64, steps, rounds, threads);
    steps64.push({ batch, ...b });
    for (const p of PRECISIONS) {
      const o = b[p];
      const g = median(o.graphMs), a = median(o.aroundMs);
      const viaEngine = e2e.find((x) => x.model === 'default' && x.batch === batch && x.maxTokens === 64) as { [k in Precision]?: Turns } | undefined;
      const gap = viaEngine?.[p] ? `; through the engine process ${median(viaEngine[p].msPerCall).toFixed(1)} ms per call (x${(median(viaEngine[p].msPerCall) / (g + a)).toFixed(2)} in-process, other rounds)` : '';
      console.log(`  b${batch} ${p}: graph ${spread(o.graphMs)} + around ${spread(o.aroundMs)} ms (around = ${((100 * a) / (g + a)).toFixed(0)}%)${gap}`);
    }
  }
  writeJson(join(values.out!, 'int8.json'), { config: { rounds, steps, threads: threads ?? null, date: new Date().toISOString() }, fp32Ceiling, int8Ceiling, ceilings, sizes: sz, endToEnd: e2e, torch, int4, breakdown: steps64 });
}

void main();
