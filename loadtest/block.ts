// Block diffusion (BD3-LM) costs on one model, in one run (compare the ratios, not absolute
// numbers across runs or machines):
//  1. the KV cache vs recomputing the context, at 128, 512 and 1024 generated tokens (--lengths).
//     The attention window is widened to hold the longest run plus the prompt, so no run slides
//     its window and the context grows with every block: the graph computes rotary angles from
//     its `positions` input (no table baked at the trained length), so it runs past the 128
//     tokens it was trained on; the tokens out there are not good text, only the cost is the
//     point. Two baselines: "recompute" re-encodes the context's clean blocks with the same
//     graph before every denoising call (exact: asserted to give the cache's tokens for the same
//     seed; a call per block); "full pass" runs one call over [context ; block] per denoising
//     step, the FLOPs of an uncached block-causal forward (timing only: the graph's in-call
//     attention is not block-causal, so its tokens are not BD3-LM's).
//  2. block size 4 / 8 / 16 at the model's own window: tokens/s and network calls per token at
//     the same tokens per call.
//
// Recomputing costs calls quadratic in length, so lengths over 512 run --long-rounds rounds
// (default 1) instead of --rounds.
//
//   npm run bench:block -- [--model models/zoo/bd3lm-brown] [--threads N] [--rounds 3]
//                          [--lengths 128,512,1024] [--long-rounds 1]
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { CacheManager } from '../engine/cache-manager.js';
import { Bd3lmSequence, type BlockModel } from '../engine/families/bd3lm.js';
import { blockModel } from '../engine/families/bd3lm-family.js';
import { bd3lmLayout } from '../engine/families/bd3lm-cache.js';
import { windowBlocks } from '../engine/families/block-window.js';
import { loadModelDir } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { Scheduler } from '../engine/scheduler.js';
import { sessionRunner } from '../engine/session-runner.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/bd3lm-brown' }, threads: { type: 'string' }, rounds: { type: 'string' },
    lengths: { type: 'string', default: '128,512,1024' }, 'long-rounds': { type: 'string' },
  },
  strict: false,
});

function count(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}
const ROUNDS = count('rounds', String(values.rounds ?? 3), 1);
const LONG_ROUNDS = count('long-rounds', String(values['long-rounds'] ?? 1), 1);
const LENGTHS = String(values.lengths).split(',').map((s) => count('lengths', s.trim(), 1));
const BLOCK = 4;

const dir = loadModelDir(String(values.model));
const m = dir.manifest;
const shape = { nLayers: m.architecture.n_layers, nHeads: m.architecture.n_heads, headDim: m.architecture.head_dim };
const session = await ort.InferenceSession.create(join(dir.dir, m.graphs.block!.file), {
  ...(values.threads ? { intraOpNumThreads: Number(values.threads) } : {}),
});
const runner = sessionRunner(m, new Map([['block', session]]));

function params(over: Partial<GenerationParams>): GenerationParams {
  return { maxTokens: 128, sampler: 'confidence_topk', steps: 2, temperature: 1, topP: 1, topK: 0, seed: 0, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...over };
}

const PROMPT = [2];
const trained = blockModel(m);
// Part 1's window: the prompt, the longest run and the block being denoised, whole blocks.
const wide: BlockModel = { ...trained, maxLength: Math.max(m.max_length, Math.ceil((PROMPT.length + Math.max(...LENGTHS)) / BLOCK) * BLOCK + BLOCK) };

type Result = { s: number; tokens: number[]; nfe: number };

/** One sequence through the real scheduler; seconds, tokens and calls. */
async function timed(p: GenerationParams, model: BlockModel, recompute: boolean): Promise<Result> {
  const tokens: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const sched = new Scheduler(runner, { finished: () => done(), failed: (_s, e) => { throw e; }, call: () => {} }, 1, 1);
  const seq = new Bd3lmSequence(0, PROMPT, p, p.blockSize!, model, bd3lmLayout(m), new CacheManager(bd3lmLayout(m), 256 << 20), { commit: (t) => { tokens.push(...t); }, step: () => {} }, { recompute });
  const t0 = performance.now();
  sched.submit(seq);
  const loop = sched.loop();
  await finished;
  sched.close();
  await loop;
  return { s: (performance.now() - t0) / 1000, tokens, nfe: seq.usage().nfe };
}

/** One call over [context ; block] per denoising step: the uncached forward's cost. */
async function fullPass(p: GenerationParams): Promise<Result> {
  const bs = p.blockSize!;
  const window = windowBlocks(wide.maxLength, bs) * bs;
  const nL = shape.nLayers, H = shape.nHeads, Dh = shape.headDim;
  const t0 = performance.now();
  let nfe = 0;
  for (let made = 0; made < p.maxTokens; made += bs) {
    const L = Math.min(made, window) + bs;
    const feeds = {
      tokens: new ort.Tensor('int64', new BigInt64Array(L).fill(4n), [1, L]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
      positions: new ort.Tensor('int64', BigInt64Array.from({ length: L }, (_, i) => BigInt(i)), [1, L]),
      past_keys: new ort.Tensor('float32', new Float32Array(nL * H * Dh), [1, nL, H, 1, Dh]),
      past_values: new ort.Tensor('float32', new Float32Array(nL * H * Dh), [1, nL, H, 1, Dh]),
      past_mask: new ort.Tensor('int64', new BigInt64Array(1), [1, 1]),
    };
    for (let s = 0; s < p.steps; s++) { await session.run(feeds); nfe++; }
  }
  return { s: (performance.now() - t0) / 1000, tokens: new Array<number>(p.maxTokens), nfe };
}

const fmt = (x: number, d = 1) => x.toFixed(d).padStart(9);
type Job = { label: string; rounds: number; run: () => Promise<Result>; times: number[]; last?: Result; check?: (r: Result) => void };

/** Every job once per round, in turn, so background load falls on all alike; median time. */
async function roundRobin(jobs: Job[]): Promise<void> {
  const rounds = Math.max(...jobs.map((j) => j.rounds));
  for (let r = 0; r < rounds; r++) {
    for (const j of jobs.filter((j) => r < j.rounds)) {
      const res = await j.run();
      j.check?.(res);
      j.times.push(res.s);
      j.last = res;
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const tps = (j: Job) => j.last!.tokens.length / median(j.times);

console.log(`model ${m.name} (${m.architecture.n_params ?? '?'} parameters, trained window ${m.max_length}), batch 1, confidence_topk, median of round-robin rounds`);
await timed(params({ maxTokens: 8, blockSize: BLOCK }), wide, false); // warm-up
const kv: Job[][] = [];
for (const n of LENGTHS) {
  const p = params({ maxTokens: n, blockSize: BLOCK, steps: 2 });
  const rounds = n > 512 ? LONG_ROUNDS : ROUNDS;
  const cached: Job = { label: 'kv cache', rounds, run: () => timed(p, wide, false), times: [] };
  // The baseline must be the same decoding, or its time says nothing about the cache.
  cached.check = (r) => assert.equal(r.tokens.length, n, `${n} tokens: the KV cache run made ${r.tokens.length}`);
  // Each round runs the cached job first; the baseline must be the same decoding, or its time
  // says nothing about the cache.
  const same = (r: Result) => assert.deepEqual(r.tokens, cached.last!.tokens, `${n} tokens: recompute gave other tokens than the KV cache`);
  kv.push([cached, { label: 'recompute', rounds, run: () => timed(p, wide, true), times: [], check: same }, { label: 'full pass', rounds, run: () => fullPass(p), times: [] }]);
}
const sizes: Job[] = [4, 8, 16].filter((bs) => m.block!.sizes.includes(bs)).map((bs) => ({
  label: String(bs), rounds: ROUNDS, run: () => timed(params({ maxTokens: 128, blockSize: bs, steps: bs / 2 }), trained, false), times: [],
}));
await roundRobin([...kv.flat(), ...sizes]);

console.log(`\n1. KV cache vs recomputing the context (block ${BLOCK}, 2 steps per block, window of ${wide.maxLength} tokens, so none slides)`);
console.log('tokens  rounds  method        tokens/s  NFE/token   cache speed-up');
LENGTHS.forEach((n, i) => {
  const [cached] = kv[i]!;
  for (const j of kv[i]!) {
    console.log(`${String(n).padStart(6)}  ${String(j.times.length).padStart(6)}  ${j.label.padEnd(12)}${fmt(tps(j))}${fmt(j.last!.nfe / j.last!.tokens.length, 2)}   ${j === cached ? '' : `x${(tps(cached!) / tps(j)).toFixed(2)}`}`);
  }
});
console.log(`\n2. Block size (128 tokens, 2 tokens per call: steps = block / 2; the model's own ${m.max_length}-token window)`);
console.log('block  tokens/s  NFE/token   vs block 4');
for (const j of sizes) console.log(`${j.label.padStart(5)}${fmt(tps(j))}${fmt(j.last!.nfe / j.last!.tokens.length, 2)}   x${(tps(j) / tps(sizes[0]!)).toFixed(2)}`);
await session.release();
