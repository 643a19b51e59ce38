// Where one decoding step of the default model spends its time, in-process (the real scheduler,
// sampler and ONNX Runtime sessions through DirectRunner): the graph (session.run) timed around
// the Runner, and everything else split by V8's sampling CPU profiler, its samples grouped by
// the engine function they landed in (softmax, draw, RNG, sort, slicing, feeds, GC). The
// profile is taken on a separate run from the timed one, so its overhead does not inflate the
// step; precisions take turns round by round, so machine load falls on both alike.
// --baseline-dist DIR (the dist/ of another checkout, built) profiles that build beside this one
// in the same run, taking turns, and checks that both decode the same tokens at the same seeds.
//
//   npm run bench:step -- [--precisions int8,fp32] [--batches 1,16] [--tokens 64] [--steps 16]
//                         [--rounds 2] [--threads N] [--baseline-dist DIR] [--out .work/step-profile]
import { Session } from 'node:inspector/promises';
import * as ort from 'onnxruntime-node';
import { openablePaths } from '../engine/derived-graph.js';
import { openDeviceSession } from '../engine/device-session.js';
import { loadModelDir, type Precision } from '../engine/manifest.js';
import { pickPrecision } from '../engine/precision.js';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as direct from '../engine/direct-runner.js';
import * as registry from '../engine/families/registry.js';
import type { GenerationParams } from '../engine/protocol.js';
import { expRowSimd, expRowSum } from '../engine/samplers/exp-row.js';
import { writeJson } from './report.js';
import { timedRunner } from './timed-runner.js';

const { values } = parseArgs({
  options: {
    precisions: { type: 'string', default: 'int8,fp32' },
    batches: { type: 'string', default: '1,16' },
    tokens: { type: 'string', default: '64' },
    steps: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string' },
    'baseline-dist': { type: 'string' },
    out: { type: 'string', default: '.work/step-profile' },
  },
  strict: true,
});

interface ProfileNode { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/**
 * Which part of a step a profiler sample belongs to, from the function it landed in and the
 * file that function lives in. Native code called from a JS frame (Math.exp, TypedArray
 * builtins) is counted in that frame, so the softmax includes its exps.
 */
function category(fn: string, url: string): string {
  const file = url.slice(url.lastIndexOf('/') + 1);
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  // The binding's InferenceSession.run is a native function without a name or a file.
  if (file === 'backend.js' || (url === '' && (fn === '' || fn === '(anonymous)'))) return 'graph (ORT run, output copy)';
  if (url === '' && fn === 'dispatch') return 'idle'; // the inspector's own messages
  if (file === 'session-runner.js') return 'ORT tensors in/out';
  // V8 inlines these into each other (and the RNG into the sampler), so they are one part.
  if (url.startsWith('wasm')) return 'softmax: exp kernel (wasm SIMD)';
  if (['distribution', 'argMax', 'expRowSum', 'jsRow', 'sample', 'draw'].includes(fn) || file === 'categorical.js' || file === 'exp-row.js') return 'softmax + draw over V (JS)';
  if (file === 'rng.js' || file.includes('pure-rand') || url.includes('pure-rand')) return 'RNG';
  if (fn === 'sort' || fn.includes('confidenceTopkStep') || fn === 'proposals') return 'proposals, sort (RNG inlined)';
  if (fn === 'batchFeeds' || file === 'row-tensor.js') return 'feeds (batchFeeds)';
  if (fn === 'slice' || fn === 'subarray' || fn === 'runGroup') return 'logits rows (slicing)';
  if (file === 'mdlm.js' || file === 'masked-step.js' || file === 'masked.js') return 'sequence bookkeeping';
  if (file === 'scheduler.js' || file === 'direct-runner.js') return 'scheduler';
  if (fn === '(program)') return '(program: native, unattributed)';
  return 'other';
}

const raw = new Map<string, number>();

/** Self time per category, ms, from a V8 CPU profile. */
function byCategory(p: Profile): Map<string, number> {
  const node = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = node.get(id)!;
    const c = category(n.callFrame.functionName, n.callFrame.url);
    out.set(c, (out.get(c) ?? 0) + p.timeDeltas[i]! / 1000);
    if (process.env.STEP_PROFILE_RAW) {
      const k = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.slice(n.callFrame.url.lastIndexOf('/') + 1)}`;
      raw.set(k, (raw.get(k) ?? 0) + p.timeDeltas[i]! / 1000);
    }
  });
  return out;
}

interface Run { graphMs: number; wallMs: number; calls: number; tokens: number[][] }

/** One build's engine: this checkout's, or the baseline's loaded from its dist/. */
interface Build { name: string; DirectRunner: typeof direct.DirectRunner; familyOf: typeof registry.familyOf }
type DirectRunner = direct.DirectRunner;

async function decode(b: Build, r: DirectRunner, batch: number, tokens: number, steps: number, seed: number): Promise<Run> {
  const m = r.dir.manifest;
  const family = b.familyOf(m)!;
  const { runner: timed, time } = timedRunner(r.runner);
  const params: GenerationParams = {
    sampler: m.defaults.sampler ?? m.samplers[0]!, steps, maxTokens: tokens, temperature: m.defaults.temperature ?? 1,
    topP: 1, topK: 0, seed, ignoreEos: true, stopTokenIds: [], streamSteps: false,
  };
  const t0 = performance.now();
  const res = await r.run(family, Array.from({ length: batch }, () => []), Array.from({ length: batch }, (_, s) => ({ ...params, seed: seed + s })), { maxBatch: batch, runner: timed, cache: r.newCache(family) });
  return { graphMs: time.ms, wallMs: performance.now() - t0, calls: time.calls, tokens: res.map((x) => x.tokens) };
}

/**
 * What the logits cost on their way out of ONNX Runtime: the denoiser at [batch, L] with a fresh
 * output (what the engine does: ORT allocates, the binding hands JS a new B x L x V buffer)
 * against a preallocated output tensor it writes into, best of `reps` each, taking turns.
 */
async function outputCost(precision: Precision, batch: number, L: number, threads: number | undefined, reps = 4): Promise<{ freshMs: number; preallocatedMs: number }> {
  const dir = loadModelDir(resolve('models/zoo/default'));
  const paths = await openablePaths(pickPrecision(dir, precision, 'cpu'));
  const session = await openDeviceSession(paths.denoiser!, 'cpu', threads !== undefined ? { threads } : {});
  const V = dir.manifest.vocab_size, mask = dir.manifest.special_tokens.mask!;
  // Half the canvas masked, as mid-way through a window.
  const tokens = BigInt64Array.from({ length: batch * L }, (_, i) => BigInt(i % 2 === 0 ? mask : 4 + ((i * 7919) % (V - 4))));
  const feeds = { tokens: new ort.Tensor('int64', tokens, [batch, L]), attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * L).fill(1n), [batch, L]) };
  const pre = new ort.Tensor('float32', new Float32Array(batch * L * V), [batch, L, V]);
  const out = session.outputNames[0]!;
  await session.run(feeds);
  await session.run(feeds, { [out]: pre });
  if ((pre.data as Float32Array).every((x) => x === 0)) throw new Error('onnxruntime-node did not write into the preallocated output');
  let freshMs = Infinity, preallocatedMs = Infinity;
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    await session.run(feeds);
    freshMs = Math.min(freshMs, performance.now() - t);
    t = performance.now();
    await session.run(feeds, { [out]: pre });
    preallocatedMs = Math.min(preallocatedMs, performance.now() - t);
  }
  await session.release();
  return { freshMs, preallocatedMs };
}

/**
 * The softmax's exps alone, CPU time (this thread only runs them): expRowSum (the SIMD kernel
 * the samplers call) against the Math.exp loop it replaced, on the same 64 rows of 4096
 * logits, best of 5 bursts each, taking turns; and whether their doubles agree.
 */
function expKernel(): { mathExpMs: number; kernelMs: number; identical: boolean } {
  const V = 4096, rows = 64;
  const x = Float32Array.from({ length: rows * V }, (_, i) => (((i * 7919) % 10007) / 10007 - 0.5) * 12 + (i % V < 40 ? 8 : 0));
  const out = new Float64Array(V);
  const mathExp = (): number => {
    let s = 0;
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let v = 0; v < V; v++) { const e = v === 3 ? 0 : Math.exp((x[r * V + v]! - 14) * 1); out[v] = e; sum += e; }
      s += sum;
    }
    return s;
  };
  const kernel = (): number => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += expRowSum(x, r * V, V, 14, 1, 3);
    return s;
  };
  const cpuMs = (f: () => number): number => {
    const t = process.cpuUsage();
    for (let i = 0; i < 10; i++) f();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / 1000 / 10;
  };
  const identical = mathExp() === kernel();
  let mathExpMs = Infinity, kernelMs = Infinity;
  for (let b = 0; b < 6; b++) {
    const m = cpuMs(mathExp), k = cpuMs(kernel);
    if (b > 0) { mathExpMs = Math.min(mathExpMs, m); kernelMs = Math.min(kernelMs, k); } // burst 0 warms up
  }
  return { mathExpMs, kernelMs, identical };
}

async function main(): Promise<void> {
  const precisions = values.precisions!.split(',') as Precision[];
  const batches = values.batches!.split(',').map(Number);
  const tokens = Number(values.tokens), steps = Number(values.steps), rounds = Number(values.rounds);
  const threads = values.threads ? Number(values.threads) : undefined;
  const builds: Build[] = [{ name: 'this build', DirectRunner: direct.DirectRunner, familyOf: registry.familyOf }];
  if (values['baseline-dist']) {
    const base = resolve(values['baseline-dist']);
    const d = await import(pathToFileURL(join(base, 'engine/direct-runner.js')).href) as typeof direct;
    const f = await import(pathToFileURL(join(base, 'engine/families/registry.js')).href) as typeof registry;
    builds.push({ name: 'baseline', DirectRunner: d.DirectRunner, familyOf: f.familyOf });
  }
  // Every (build, precision) pair, taking turns.
  const entries = builds.flatMap((b) => precisions.map((precision) => ({ build: b, precision })));
  const runners = await Promise.all(entries.map((e) => e.build.DirectRunner.open(resolve('models/zoo/default'), threads, e.precision)));
  const inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
  console.log(`one step of the default in-process, ${tokens} tokens, ${steps} steps, sampler ${runners[0]!.dir.manifest.defaults.sampler}; ms per network call`);
  const report: { batch: number; build: string; precision: Precision; graphMs: number; aroundMs: number; profiledGraphMs: number; profile: Record<string, number> }[] = [];
  const mismatches: string[] = [];
  for (const batch of batches) {
    const acc = entries.map(() => ({ graphMs: 0, wallMs: 0, calls: 0, profile: new Map<string, number>(), profileCalls: 0 }));
    // r = -1 warms up (JIT, first-run allocations) and is not counted.
    for (let r = -1; r < rounds; r++) {
      const order = r % 2 === 0 ? [...entries.keys()] : [...entries.keys()].reverse();
      const decoded = new Map<number, number[][]>();
      for (const i of order) {
        const a = acc[i]!;
        const t = await decode(entries[i]!.build, runners[i]!, batch, tokens, steps, 1 + r);
        decoded.set(i, t.tokens);
        if (r < 0) continue;
        a.graphMs += t.graphMs; a.wallMs += t.wallMs; a.calls += t.calls;
        await inspector.post('Profiler.start');
        const p = await decode(entries[i]!.build, runners[i]!, batch, tokens, steps, 1 + r);
        const { profile } = await inspector.post('Profiler.stop') as { profile: Profile };
        a.profileCalls += p.calls;
        for (const [c, ms] of byCategory(profile)) a.profile.set(c, (a.profile.get(c) ?? 0) + ms);
      }
      // The same precision and seeds must decode the same tokens in both builds.
      entries.forEach((e, i) => {
        if (e.build !== builds[0]) return;
        const j = entries.findIndex((o) => o.build !== e.build && o.precision === e.precision);
        if (j >= 0 && JSON.stringify(decoded.get(i)) !== JSON.stringify(decoded.get(j))) mismatches.push(`b${batch} ${e.precision} round ${r}`);
      });
    }
    entries.forEach((e, i) => {
      const a = acc[i]!;
      const graph = a.graphMs / a.calls, around = (a.wallMs - a.graphMs) / a.calls;
      const parts = [...a.profile].filter(([c]) => c !== 'graph (ORT run, output copy)' && c !== 'idle')
        .map(([c, ms]) => [c, ms / a.profileCalls] as const).sort((x, y) => y[1] - x[1]);
      const label = builds.length > 1 ? `${e.precision}, ${e.build.name}` : e.precision;
      console.log(`\n  b${batch} ${label}: graph ${graph.toFixed(1)} + around ${around.toFixed(1)} ms (around = ${((100 * around) / (graph + around)).toFixed(1)}%)`);
      const profGraph = (a.profile.get('graph (ORT run, output copy)') ?? 0) / a.profileCalls;
      console.log(`    profiled run: graph (ORT run, output copy) ${profGraph.toFixed(1)} ms; around it, by part:`);
      for (const [c, ms] of parts) console.log(`      ${c.padEnd(34)} ${ms.toFixed(2).padStart(7)} ms`);
      report.push({ batch, build: e.build.name, precision: e.precision, graphMs: graph, aroundMs: around, profile: Object.fromEntries(parts), profiledGraphMs: profGraph });
    });
  }
  inspector.disconnect();
  if (process.env.STEP_PROFILE_RAW) for (const [k, ms] of [...raw].sort((x, y) => y[1] - x[1]).slice(0, 30)) console.log(`  raw ${k} ${ms.toFixed(0)} ms`);
  for (const r of runners) await r.close();
  const kern = expKernel();
  console.log(`\nthe exps alone, 64 rows of 4096, CPU ms (best of 5): Math.exp loop ${kern.mathExpMs.toFixed(2)}, expRowSum${expRowSimd ? ' (wasm SIMD)' : ' (no SIMD: Math.exp)'} ${kern.kernelMs.toFixed(2)} (x${(kern.mathExpMs / kern.kernelMs).toFixed(2)}); sums ${kern.identical ? 'identical' : 'DIFFER'}`);
  if (!kern.identical) process.exitCode = 1;
  const outputs: { batch: number; precision: Precision; freshMs: number; preallocatedMs: number }[] = [];
  console.log(`\nlogits out of ONNX Runtime, the denoiser at [batch, ${tokens + 1}], best of 4: fresh output (as the engine runs) vs preallocated`);
  for (const batch of batches) {
    for (const precision of precisions) {
      const o = await outputCost(precision, batch, tokens + 1, threads);
      outputs.push({ batch, precision, ...o });
      console.log(`  b${batch} ${precision}: fresh ${o.freshMs.toFixed(1)} ms, preallocated ${o.preallocatedMs.toFixed(1)} ms (difference ${(o.freshMs - o.preallocatedMs).toFixed(1)} ms)`);
    }
  }
  if (builds.length > 1) console.log(mismatches.length === 0 ? '\ntokens: identical in both builds at every seed, batch and precision' : `\ntokens DIFFER between the builds: ${mismatches.join(', ')}`);
  writeJson(join(values.out!, 'step-profile.json'), { config: { tokens, steps, rounds, threads: threads ?? null, baseline: values['baseline-dist'] ?? null, date: new Date().toISOString() }, report, outputs, expKernel: kern, mismatches });
  if (mismatches.length > 0) process.exitCode = 1;
}

void main();
