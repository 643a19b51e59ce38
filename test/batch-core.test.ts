// Iteration-level batching on the real tiny model, through EngineCore in this process (so that
// the test decides exactly at which tick a sequence joins or leaves). A sequence must come out
// the same whether it ran alone or in a batch with others that use other samplers, lengths,
// prompts and settings (the adaptive rules and kv_cache modes among them), join and leave between ticks, or are cancelled mid-run: the graphs
// mask padding out of attention, and each sequence owns its RNG, so there is no tolerance to
// state: the tokens are equal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineCore } from '../engine/core.js';
import type { DoneMsg, GenerationParams, StepMsg } from '../engine/protocol.js';

const TINY = 'models/zoo/tiny-mdlm';

interface Outcome { tokens: number[]; done: DoneMsg }
interface Handlers { commit(t: number[]): void; step(s: StepMsg): void; done(d: DoneMsg): void }

/** EngineCore with per-sequence callbacks and promises. */
class Core {
  private readonly handlers = new Map<number, Handlers>();
  private nextId = 1;
  /** Every call's batch size, from the stats the engine pushes after each tick. */
  readonly batchSizes: number[] = [];
  private constructor(readonly core: EngineCore) {}

  static async open(maxBatch: number, modelDir = TINY): Promise<Core> {
    let self: Core | null = null;
    const core = await EngineCore.open({ modelDir, device: 'cpu', threads: 1, maxBatch, maxQueue: 1024 }, {
      commit: (id, tokens) => self!.handlers.get(id)?.commit(tokens),
      step: (msg) => self!.handlers.get(msg.id)?.step(msg),
      error: () => {},
      done: (msg) => { const h = self!.handlers.get(msg.id); self!.handlers.delete(msg.id); h?.done(msg); },
      stats: (s) => self!.batchSizes.push(...s.batchSizes),
    });
    self = new Core(core);
    return self;
  }

  /** Starts a sequence; `onStep` sees every denoising step (to make others join or leave then). */
  run(prompt: number[], params: GenerationParams, onStep?: (s: StepMsg, id: number) => void): { id: number; result: Promise<Outcome> } {
    const id = this.nextId++;
    const tokens: number[] = [];
    const result = new Promise<Outcome>((resolve) => {
      this.handlers.set(id, {
        commit: (t) => tokens.push(...t),
        step: (s) => onStep?.(s, id),
        done: (d) => resolve({ tokens, done: d }),
      });
    });
    this.core.generate(id, prompt, params);
    return { id, result };
  }
}

const base = (p: Partial<GenerationParams>): GenerationParams => ({
  maxTokens: 24, sampler: 'ddpm', steps: 8, temperature: 1, topP: 1, topK: 0, seed: 1,
  ignoreEos: true, stopTokenIds: [], streamSteps: true, ...p,
});

/** Prompts of many lengths (0 to near the model's 128) and settings across every sampler. */
const REQUESTS: { prompt: number[]; params: GenerationParams }[] = [
  { prompt: [5, 6, 7], params: base({ seed: 1 }) },
  { prompt: [], params: base({ seed: 2, sampler: 'ddpm_cache', steps: 32, maxTokens: 16 }) },
  { prompt: Array.from({ length: 90 }, (_, i) => 10 + i), params: base({ seed: 3, sampler: 'first_hitting', maxTokens: 30 }) },
  { prompt: [42], params: base({ seed: 4, sampler: 'confidence_topk', steps: 4, maxTokens: 12 }) },
  { prompt: [9, 9, 9, 9, 9], params: base({ seed: 5, sampler: 'confidence_threshold', confidenceThreshold: 0.5, maxTokens: 20 }) },
  { prompt: [100, 200, 300], params: base({ seed: 6, temperature: 0.7, topK: 20, steps: 16 }) },
  { prompt: [1, 2, 3, 4], params: base({ seed: 7, topP: 0.9, maxTokens: 40, steps: 12 }) },
  { prompt: [7], params: base({ seed: 8, sampler: 'remdm', remasking: { schedule: 'cap', eta: 0.2 }, steps: 16, maxTokens: 16 }) },
  // Longer than the model: the window slides, so this one changes length mid-run.
  { prompt: [3, 1], params: base({ seed: 9, sampler: 'confidence_topk', steps: 4, maxTokens: 150 }) },
  { prompt: [5, 6, 7], params: base({ seed: 1, maxTokens: 6, steps: 3 }) },
  { prompt: [11, 12], params: base({ seed: 11, sampler: 'ddpm_cache', steps: 64, maxTokens: 8 }) },
  { prompt: [500, 501, 502, 503, 504, 505], params: base({ seed: 12, sampler: 'first_hitting', maxTokens: 10 }) },
  // The adaptive rules: a data-dependent number of tokens per call, and drafts on the step messages.
  { prompt: [13, 14], params: base({ seed: 13, sampler: 'entropy_bound', entropyBound: 20, maxTokens: 20 }) },
  { prompt: [15], params: base({ seed: 14, sampler: 'confidence_factor', confidenceFactor: 4, maxTokens: 18, streamDrafts: true }) },
  { prompt: [16, 17, 18], params: base({ seed: 15, sampler: 'entropy_bound', entropyBound: 0, temperature: 0, maxTokens: 9 }) },
  // kv_cache (the denoiser_kv graph): refresh rows (every position queried, empty past) and
  // cached rows (a few queries, a long past) of both modes share calls, padded on both axes.
  { prompt: [5, 6, 7], params: base({ seed: 13, kvCache: 'prefix', maxTokens: 30 }) },
  { prompt: Array.from({ length: 40 }, (_, i) => 50 + i), params: base({ seed: 14, sampler: 'confidence_topk', kvCache: 'dual', steps: 16, maxTokens: 100 }) },
  { prompt: [21], params: base({ seed: 15, sampler: 'confidence_threshold', confidenceThreshold: 0.3, kvCache: 'dual', cacheRefresh: 3, maxTokens: 24 }) },
  { prompt: [2, 4, 6, 8], params: base({ seed: 16, sampler: 'first_hitting', kvCache: 'prefix', cacheRefresh: 1, maxTokens: 20 }) },
  { prompt: [70, 71], params: base({ seed: 17, sampler: 'ddpm_cache', kvCache: 'dual', steps: 40, temperature: 0.8, topP: 0.9, maxTokens: 36 }) },
  // cache_block: other sub-block lengths beside the default 32 in the same calls.
  { prompt: [30, 31, 32], params: base({ seed: 18, sampler: 'confidence_topk', kvCache: 'dual', cacheBlock: 8, steps: 12, maxTokens: 40 }) },
  { prompt: [33], params: base({ seed: 19, sampler: 'confidence_topk', kvCache: 'prefix', cacheBlock: 16, steps: 10, maxTokens: 50 }) },
];

let batched: Core;
let unbatched: Core;
const alone: Outcome[] = [];
before(async () => {
  batched = await Core.open(16);
  unbatched = await Core.open(1);
  // The reference: each request on its own, one after another.
  for (const r of REQUESTS) alone.push(await batched.run(r.prompt, r.params).result);
  batched.batchSizes.length = 0; // forget the reference run's batch sizes
});
after(async () => {
  await batched.core.close();
  await unbatched.core.close();
});

test('sequences joining and leaving between ticks get the same tokens as alone', async () => {
  // Four start together; each later one joins when an earlier one reaches a given step, so
  // joins land mid-flight in batches of changing size, while short ones leave early.
  const results: Promise<Outcome>[] = [];
  let allStarted!: () => void;
  const started = new Promise<void>((r) => (allStarted = r));
  const start = (i: number): void => {
    results[i] = batched.run(REQUESTS[i]!.prompt, REQUESTS[i]!.params, joinAt).result;
    if (results.filter(Boolean).length === REQUESTS.length) allStarted();
  };
  let next = 4;
  function joinAt(s: StepMsg): void {
    if (s.step === 2 && next < REQUESTS.length) start(next++);
  }
  for (let i = 0; i < 4; i++) start(i);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`only ${next} requests started`)), 30_000); })]);
  clearTimeout(timer);
  const got = await Promise.all(results);
  got.forEach((g, i) => {
    assert.equal(g.done.reason, 'length', `request ${i}`);
    assert.equal(g.tokens.length, REQUESTS[i]!.params.maxTokens, `request ${i}`);
    assert.deepEqual(g.tokens, alone[i]!.tokens, `request ${i} (${REQUESTS[i]!.params.sampler})`);
    assert.equal(g.done.usage.nfe, alone[i]!.done.usage.nfe, `request ${i}: the same network calls`);
  });
  const sizes = batched.batchSizes;
  assert.ok(Math.max(...sizes) >= 4, `batches of several: ${sizes.slice(0, 40)}`);
  assert.ok(new Set(sizes).size >= 3, `batch sizes changed as sequences joined and left: ${[...new Set(sizes)]}`);
});

test('no cross-talk: the same request twice in one batch agrees with itself, a neighbour cancelled mid-run changes nothing', async () => {
  const r = REQUESTS[0]!;
  const twin = REQUESTS[9]!; // same prompt and seed as REQUESTS[0], other length and steps
  let victim = -1;
  const cancelAt = (s: StepMsg, id: number): void => { if (id === victim && s.step === 3) batched.core.cancel(id); };
  const a = batched.run(r.prompt, r.params);
  const b = batched.run(r.prompt, r.params);
  const c = batched.run(twin.prompt, twin.params);
  const v = batched.run([8, 8, 8], base({ seed: 77, maxTokens: 64, steps: 64 }), cancelAt);
  victim = v.id;
  const d = batched.run(REQUESTS[2]!.prompt, REQUESTS[2]!.params);
  const [ra, rb, rc, rv, rd] = await Promise.all([a.result, b.result, c.result, v.result, d.result]);
  assert.equal(rv.done.reason, 'cancelled');
  assert.deepEqual(ra.tokens, alone[0]!.tokens);
  assert.deepEqual(rb.tokens, alone[0]!.tokens);
  assert.deepEqual(rc.tokens, alone[9]!.tokens);
  assert.deepEqual(rd.tokens, alone[2]!.tokens);
  // Same seed, other settings: a different output (the rows did not copy each other).
  assert.notDeepEqual(rc.tokens, ra.tokens.slice(0, rc.tokens.length));
});

test('max batch 1 turns batching off: every call holds one sequence, and the tokens do not change', async () => {
  const picks = [0, 3, 5, 6, 12, 13];
  unbatched.batchSizes.length = 0;
  const got = await Promise.all(picks.map((i) => unbatched.run(REQUESTS[i]!.prompt, REQUESTS[i]!.params).result));
  got.forEach((g, k) => assert.deepEqual(g.tokens, alone[picks[k]!]!.tokens, `request ${picks[k]}`));
  const sizes = unbatched.batchSizes;
  assert.ok(sizes.length > 0);
  assert.deepEqual([...new Set(sizes)], [1]);
});

// Duo (models/zoo/duo-brown) with kv_cache rows (engine/families/duo-kv.ts) beside plain ones:
// refresh rows (every position queried, sigma, empty past), cached rows of both modes with pasts
// of different lengths, and plain denoiser rows, each at its own sigma.
test('Duo: kv_cache prefix and dual rows batched with plain rows get the same tokens as alone', async () => {
  const duoBase = (p: Partial<GenerationParams>): GenerationParams => base({ sampler: 'duo', steps: 10, topP: 0.95, ...p });
  const duoRequests: { prompt: number[]; params: GenerationParams }[] = [
    { prompt: [5, 6, 7], params: duoBase({ seed: 21, kvCache: 'prefix', maxTokens: 30 }) },
    { prompt: Array.from({ length: 40 }, (_, i) => 50 + i), params: duoBase({ seed: 22, kvCache: 'dual', steps: 16, maxTokens: 100 }) },
    { prompt: [21], params: duoBase({ seed: 23, sampler: 'duo_greedy', kvCache: 'dual', cacheRefresh: 3, maxTokens: 24 }) },
    { prompt: [2, 4, 6, 8], params: duoBase({ seed: 24, kvCache: 'prefix', cacheRefresh: 2, maxTokens: 70 }) },
    { prompt: [70, 71], params: duoBase({ seed: 25, maxTokens: 36 }) },
    { prompt: [9], params: duoBase({ seed: 26, sampler: 'duo_greedy', steps: 4, maxTokens: 20 }) },
  ];
  const duo = await Core.open(16, 'models/zoo/duo-brown');
  try {
    const alone: Outcome[] = [];
    for (const r of duoRequests) alone.push(await duo.run(r.prompt, r.params).result);
    duo.batchSizes.length = 0;
    const got = await Promise.all(duoRequests.map((r) => duo.run(r.prompt, r.params).result));
    got.forEach((g, i) => {
      assert.equal(g.tokens.length, duoRequests[i]!.params.maxTokens, `request ${i}`);
      assert.deepEqual(g.tokens, alone[i]!.tokens, `request ${i} (${duoRequests[i]!.params.kvCache ?? 'off'})`);
      assert.equal(g.done.usage.nfe, alone[i]!.done.usage.nfe, `request ${i}: the same network calls`);
    });
    assert.ok(Math.max(...duo.batchSizes) >= 3, `kv rows shared calls: ${duo.batchSizes.slice(0, 20)}`);
  } finally {
    await duo.core.close();
  }
});
