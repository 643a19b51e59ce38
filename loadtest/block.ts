// Block diffusion (BD3-LM) costs on one model, in one run (compare the ratios, not absolute
// numbers across runs or machines):
//  1. the KV cache vs recomputing the context, at 128 and 512 generated tokens. Two baselines:
//     "recompute" re-encodes the window's clean blocks with the same graph before every
//     denoising call (exact: the same tokens as the cache, a call per block); "full pass" runs
//     one call over [window ; block] per denoising step, the FLOPs of an uncached block-causal
//     forward (timing only: the graph's in-call attention is not block-causal, so its tokens
//     are not BD3-LM's).
//  2. block size 4 / 8 / 16: tokens/s and network calls per token at the same tokens per call.
//
//   npm run bench:block -- [--model models/zoo/bd3lm-brown] [--threads N] [--rounds 3]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { BlockCache } from '../engine/block-cache.js';
import { Bd3lmSequence } from '../engine/families/bd3lm.js';
import { blockModel } from '../engine/families/bd3lm-family.js';
import { loadModelDir } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { Scheduler } from '../engine/scheduler.js';
import { sessionRunner } from '../engine/session-runner.js';

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'models/zoo/bd3lm-brown' }, threads: { type: 'string' }, rounds: { type: 'string' } },
  strict: false,
});

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

/** One sequence through the real scheduler; seconds, tokens and calls. */
async function timed(p: GenerationParams, recompute: boolean): Promise<{ s: number; tokens: number; nfe: number }> {
  let tokens = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const sched = new Scheduler(runner, { finished: () => done(), failed: (_s, e) => { throw e; }, call: () => {} }, 1, 1);
  const seq = new Bd3lmSequence(0, PROMPT, p, p.blockSize!, blockModel(m), new BlockCache(256 << 20, shape), { commit: (t) => { tokens += t.length; }, step: () => {} }, { recompute });
  const t0 = performance.now();
  sched.submit(seq);
  const loop = sched.loop();
  await finished;
  sched.close();
  await loop;
  return { s: (performance.now() - t0) / 1000, tokens, nfe: seq.usage().nfe };
}

/** One call over [window ; block] per denoising step: the uncached forward's cost. */
async function fullPass(p: GenerationParams): Promise<{ s: number; tokens: number; nfe: number }> {
  const bs = p.blockSize!;
  const window = Math.floor((m.max_length - bs) / bs) * bs;
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
  return { s: (performance.now() - t0) / 1000, tokens: p.maxTokens, nfe };
}

const fmt = (x: number, d = 1) => x.toFixed(d).padStart(9);
const ROUNDS = Number(values.rounds ?? 3);
type Result = { s: number; tokens: number; nfe: number };
type Job = { label: string; run: () => Promise<Result>; times: number[]; last?: Result };

/** Every job once per round, in turn, so background load falls on all alike; median time. */
async function roundRobin(jobs: Job[]): Promise<void> {
  for (let r = 0; r < ROUNDS; r++) {
    for (const j of jobs) {
      const res = await j.run();
      j.times.push(res.s);
      j.last = res;
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const tps = (j: Job) => j.last!.tokens / median(j.times);

console.log(`model ${m.name} (${m.architecture.n_params ?? '?'} parameters, window ${m.max_length}), batch 1, confidence_topk, median of ${ROUNDS} round-robin rounds`);
await timed(params({ maxTokens: 8, blockSize: 4 }), false); // warm-up
const kv: Job[] = [];
for (const n of [128, 512]) {
  const p = params({ maxTokens: n, blockSize: 4, steps: 2 });
  kv.push({ label: `${n}\u0000kv cache`, run: () => timed(p, false), times: [] });
  kv.push({ label: `${n}\u0000recompute`, run: () => timed(p, true), times: [] });
  kv.push({ label: `${n}\u0000full pass`, run: () => fullPass(p), times: [] });
}
const sizes: Job[] = [4, 8, 16].filter((bs) => m.block!.sizes.includes(bs)).map((bs) => ({
  label: String(bs), run: () => timed(params({ maxTokens: 128, blockSize: bs, steps: bs / 2 }), false), times: [],
}));
await roundRobin([...kv, ...sizes]);

console.log('\n1. KV cache vs recomputing the context (block 4, 2 steps per block)');
console.log('tokens  method        tokens/s  NFE/token   cache speed-up');
for (let i = 0; i < kv.length; i += 3) {
  const cached = kv[i]!;
  for (const j of kv.slice(i, i + 3)) {
    const [n, name] = j.label.split('\u0000') as [string, string];
    console.log(`${n.padStart(6)}  ${name.padEnd(12)}${fmt(tps(j))}${fmt(j.last!.nfe / j.last!.tokens, 2)}   ${j === cached ? '' : `x${(tps(cached) / tps(j)).toFixed(2)}`}`);
  }
}
console.log('\n2. Block size (128 tokens, 2 tokens per call: steps = block / 2)');
console.log('block  tokens/s  NFE/token   vs block 4');
for (const j of sizes) console.log(`${j.label.padStart(5)}${fmt(tps(j))}${fmt(j.last!.nfe / j.last!.tokens, 2)}   x${(tps(j) / tps(sizes[0]!)).toFixed(2)}`);
await session.release();
