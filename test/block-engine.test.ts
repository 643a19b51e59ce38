// The BD3-LM block loop on the shipped bd3lm-brown model through the real scheduler and
// onnxruntime-node: batched equals alone for the same seed, prefix reuse gives the same tokens
// as no reuse (and reports the cached prompt tokens), every cache reference is released when
// the requests end, and the pool never holds more than its budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CacheManager } from '../engine/cache-manager.js';
import { bd3lmLayout } from '../engine/families/bd3lm-cache.js';
import { Bd3lmSequence } from '../engine/families/bd3lm.js';
import { bd3lmFamily, blockModel } from '../engine/families/bd3lm-family.js';
import { loadModelDir } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { Scheduler } from '../engine/scheduler.js';
import { sessionRunner } from '../engine/session-runner.js';
import type { Sequence } from '../engine/sequence.js';

const MODEL = resolve(import.meta.dirname, '..', '..', 'models', 'zoo', 'bd3lm-brown');
const dir = loadModelDir(MODEL);
const m = dir.manifest;
const shape = { nLayers: m.architecture.n_layers, nHeads: m.architecture.n_heads, headDim: m.architecture.head_dim };
const layout = bd3lmLayout(m);
const newCache = (bytes: number): CacheManager => new CacheManager(layout, bytes);
const session = await ort.InferenceSession.create(join(MODEL, 'block.onnx'), { intraOpNumThreads: 1 });

const runner = sessionRunner(m, new Map([['block', session]]));

function params(over: Partial<GenerationParams> = {}): GenerationParams {
  return { maxTokens: 24, sampler: 'confidence_topk', steps: 4, temperature: 1, topP: 1, topK: 0, seed: 0, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...over };
}

interface Run { tokens: number[]; seq: Bd3lmSequence }

/** Runs the sequences to the end through the real scheduler (maxBatch = all of them). */
async function generate(cache: CacheManager, reqs: { prompt: number[]; p: GenerationParams; recompute?: boolean }[], watch?: (runs: Run[]) => void): Promise<Run[]> {
  const runs: Run[] = reqs.map(() => ({ tokens: [], seq: null as unknown as Bd3lmSequence }));
  let left = reqs.length;
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const failures: unknown[] = [];
  const sched = new Scheduler(runner, {
    finished: () => { if (--left === 0) done(); },
    failed: (_s, err) => failures.push(err),
    call: () => watch?.(runs),
  }, 64, 64);
  reqs.forEach((r, i) => {
    const bs = r.p.blockSize ?? m.block!.size;
    const seq = new Bd3lmSequence(i, r.prompt, r.p, bs, blockModel(m), layout, cache, { commit: (t) => runs[i]!.tokens.push(...t), step: () => {} }, { recompute: r.recompute ?? false });
    runs[i]!.seq = seq;
    sched.submit(seq as Sequence);
  });
  const loop = sched.loop();
  await finished;
  sched.close();
  await loop;
  assert.deepEqual(failures, []);
  return runs;
}

const PROMPT = Array.from({ length: 21 }, (_, i) => 4 + ((i * 37) % 300));

test('a sequence batched with others gives the same tokens as alone (same seed)', async () => {
  const alone = await generate(newCache(64 << 20), [{ prompt: PROMPT, p: params({ seed: 5 }) }]);
  const together = await generate(newCache(64 << 20), [
    { prompt: PROMPT.slice(0, 3), p: params({ seed: 1, blockSize: 8, sampler: 'ddpm', steps: 3 }) },
    { prompt: PROMPT, p: params({ seed: 5 }) },
    { prompt: [], p: params({ seed: 2, sampler: 'first_hitting', maxTokens: 13 }) },
  ]);
  assert.equal(alone[0]!.tokens.length, 24);
  assert.deepEqual(together[1]!.tokens, alone[0]!.tokens);
  assert.equal(together[0]!.tokens.length, 24);
  assert.equal(together[2]!.tokens.length, 13);
  // Different seeds really differ (the comparison above can fail).
  assert.notDeepEqual(together[0]!.tokens, together[1]!.tokens);
});

test('prefix reuse: a second request with the same prompt reuses its blocks and gives the same tokens', async () => {
  const cache = newCache(64 << 20);
  const bs = m.block!.size;
  const first = await generate(cache, [{ prompt: PROMPT, p: params({ seed: 9 }) }]);
  assert.equal(first[0]!.seq.usage().cachedTokens, 0);
  const second = await generate(cache, [{ prompt: PROMPT, p: params({ seed: 9 }) }]);
  const fresh = await generate(newCache(64 << 20), [{ prompt: PROMPT, p: params({ seed: 9 }) }]);
  const whole = Math.floor(PROMPT.length / bs) * bs;
  assert.equal(second[0]!.seq.usage().cachedTokens, whole);
  assert.deepEqual(second[0]!.tokens, first[0]!.tokens);
  assert.deepEqual(second[0]!.tokens, fresh[0]!.tokens);
  // Reuse saves the prompt's calls.
  assert.equal(fresh[0]!.seq.usage().nfe - second[0]!.seq.usage().nfe, whole / bs);
  // A prompt that shares only its first block reuses only that one.
  const other = PROMPT.slice(0, bs).concat(PROMPT.slice(bs).map((t) => t + 1));
  const third = await generate(cache, [{ prompt: other, p: params({ seed: 9 }) }]);
  assert.equal(third[0]!.seq.usage().cachedTokens, bs);
});

test('references return to zero after every request ends, cancelled ones included', async () => {
  const cache = newCache(64 << 20);
  let ticks = 0;
  const rs = await generate(cache, [
    { prompt: PROMPT, p: params({ seed: 1 }) },
    { prompt: PROMPT, p: params({ seed: 2, maxTokens: 64 }) },
    { prompt: PROMPT.slice(0, 9), p: params({ seed: 3, blockSize: 16 }) },
  ], (runs) => { if (++ticks === 12) runs[1]!.seq.stop('cancelled'); });
  assert.equal(rs[1]!.seq.finishReason, 'cancelled');
  assert.ok(rs[1]!.tokens.length < 64);
  assert.ok(cache.stats().blocks > 0);
  assert.equal(cache.stats().references, 0);
});

test('the pool never holds more than its budget; when full, a sequence gives up its own oldest blocks', async () => {
  const bs = m.block!.size;
  const blockBytes = 2 * shape.nLayers * shape.nHeads * bs * shape.headDim * 4;
  const budget = blockBytes * 6; // less than two sequences' windows together
  const cache = newCache(budget);
  let worst = 0;
  const runs = await generate(cache, [0, 1, 2, 3].map((s) => ({ prompt: PROMPT.map((t) => t + s), p: params({ seed: s, maxTokens: 40 }) })), () => {
    worst = Math.max(worst, cache.stats().bytes);
  });
  assert.ok(worst <= budget, `pool held ${worst} bytes, budget ${budget}`);
  assert.ok(cache.stats().evictions > 0, 'the budget forced evictions');
  for (const r of runs) assert.equal(r.tokens.length, 40);
  assert.equal(cache.stats().references, 0);
});

test('block_size must be one the model lists (400 naming block_size)', () => {
  assert.throws(() => bd3lmFamily.validate(params({ blockSize: 5 }), m), (e: Error & { param?: string }) => e.param === 'block_size' && /one of/.test(e.message));
  assert.throws(() => bd3lmFamily.validate(params({ sampler: 'duo' }), m), (e: Error & { param?: string }) => e.param === 'sampler');
  for (const s of m.block!.sizes) bd3lmFamily.validate(params({ blockSize: s }), m);
});

test('EOS ends the block and the sequence; stop ids too', async () => {
  // ignoreEos off and every token a stop id: the first block stops at once, nothing streams.
  const all = Array.from({ length: m.vocab_size }, (_, i) => i);
  const r = await generate(newCache(1 << 20), [{ prompt: PROMPT, p: params({ ignoreEos: false, stopTokenIds: all }) }]);
  assert.equal(r[0]!.seq.finishReason, 'stop');
  assert.deepEqual(r[0]!.tokens, []);
});

test('the cached path and the recompute-the-context path give the same tokens for the same seed', async () => {
  for (const p of [params({ seed: 11 }), params({ seed: 12, sampler: 'ddpm', steps: 3, blockSize: 8 })]) {
    const cache = newCache(64 << 20);
    const [cached] = await generate(cache, [{ prompt: PROMPT, p }]);
    const [recomputed] = await generate(cache, [{ prompt: PROMPT, p, recompute: true }]);
    assert.equal(cached!.tokens.length, 24);
    assert.deepEqual(recomputed!.tokens, cached!.tokens);
    // Recomputing costs a call per context block per step; the cache, one per block.
    assert.ok(recomputed!.seq.usage().nfe > 2 * cached!.seq.usage().nfe, `${recomputed!.seq.usage().nfe} vs ${cached!.seq.usage().nfe}`);
  }
});

test('ddpm_cache gives the tokens of ddpm with fewer calls (an unchanged block reuses its logits)', async () => {
  const p = params({ seed: 21, sampler: 'ddpm', steps: 16, blockSize: 4 });
  const [plain] = await generate(newCache(64 << 20), [{ prompt: PROMPT, p }]);
  const [cached] = await generate(newCache(64 << 20), [{ prompt: PROMPT, p: { ...p, sampler: 'ddpm_cache' } }]);
  assert.deepEqual(cached!.tokens, plain!.tokens);
  assert.ok(cached!.seq.usage().nfe < plain!.seq.usage().nfe, `${cached!.seq.usage().nfe} vs ${plain!.seq.usage().nfe}`);
});
