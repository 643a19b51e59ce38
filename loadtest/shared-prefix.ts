// What the shared block pool's prefix reuse is worth, in one run (compare the ratios): a wave of
// concurrent requests whose prompts share a long prefix (a system prompt), after one request
// with that prefix has warmed the pool, against the same wave where every prompt's prefix
// differs in its first token (same lengths, same work, nothing to reuse). BD3-LM model
// (models/zoo/bd3lm-brown), block 4, 2 steps per block, confidence_topk, EOS ignored; a fresh
// random prefix every round, both scenarios once per round in turn, medians over rounds.
//
//   npm run bench:prefix -- [--model models/zoo/bd3lm-brown] [--prefix 96] [--wave 8] [--rounds 3] [--threads N]
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineCore } from '../engine/core.js';
import type { GenerationParams, Usage } from '../engine/protocol.js';
import { Rng } from '../engine/rng.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(REPO, 'models/zoo/bd3lm-brown') },
    prefix: { type: 'string', default: '96' }, wave: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' }, threads: { type: 'string' }, 'max-tokens': { type: 'string', default: '16' },
  },
});
const PREFIX = Number(values.prefix);
const WAVE = Number(values.wave);
const MAX_TOKENS = Number(values['max-tokens']);

interface Outcome { firstMs: number; tokens: number; usage: Usage }

const pending = new Map<number, { t0: number; first: number; tokens: number; resolve: (o: Outcome) => void }>();
const core = await EngineCore.open({ modelDir: String(values.model), device: 'cpu', maxBatch: 64, ...(values.threads ? { threads: Number(values.threads) } : {}) }, {
  commit(id, tokens) {
    const p = pending.get(id)!;
    if (p.tokens === 0) p.first = performance.now();
    p.tokens += tokens.length;
  },
  step() {},
  error(msg) { throw new Error(msg.message); },
  done(msg) {
    const p = pending.get(msg.id)!;
    pending.delete(msg.id);
    p.resolve({ firstMs: p.first - p.t0, tokens: p.tokens, usage: msg.usage });
  },
});
const V = core.model.vocabSize;
let nextId = 1;

function request(prompt: number[]): Promise<Outcome> {
  const id = nextId++;
  const params: GenerationParams = {
    ...core.model.defaults, sampler: 'confidence_topk', blockSize: 4, steps: 2, maxTokens: MAX_TOKENS,
    seed: id, ignoreEos: true, stopTokenIds: [], streamSteps: false,
  };
  return new Promise((res) => {
    pending.set(id, { t0: performance.now(), first: 0, tokens: 0, resolve: res });
    core.generate(id, prompt, params);
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rng = new Rng(7);
const randomTokens = (n: number): number[] => Array.from({ length: n }, () => 4 + rng.int(V - 4));

interface Wave { seconds: number; firstMs: number; tokens: number; cached: number; nfe: number }

async function wave(shared: boolean): Promise<Wave> {
  const prefix = randomTokens(PREFIX);
  // Distinct prompts differ in their first token, so no block hash (which names the whole
  // prefix) is ever shared; lengths and work stay the same.
  const prefixFor = (i: number): number[] => (shared ? prefix : [4 + ((prefix[0]! - 4 + 1 + i) % (V - 4)), ...prefix.slice(1)]);
  await request([...prefixFor(WAVE), ...randomTokens(4)]); // the first visitor (warms the pool when shared)
  const t0 = performance.now();
  const outs = await Promise.all(Array.from({ length: WAVE }, (_, i) => request([...prefixFor(i), ...randomTokens(4)])));
  return {
    seconds: (performance.now() - t0) / 1000,
    firstMs: median(outs.map((o) => o.firstMs)),
    tokens: outs.reduce((a, o) => a + o.tokens, 0),
    cached: outs.reduce((a, o) => a + o.usage.cachedTokens, 0),
    nfe: outs.reduce((a, o) => a + o.usage.nfe, 0),
  };
}

await wave(true); // warm-up
const results: Record<'shared' | 'distinct', Wave[]> = { shared: [], distinct: [] };
for (let r = 0; r < Number(values.rounds); r++) {
  results.shared.push(await wave(true));
  results.distinct.push(await wave(false));
}
console.log(`model ${core.model.name}: waves of ${WAVE} concurrent requests, prompt ${PREFIX} + 4 tokens, ${MAX_TOKENS} new tokens each, block 4, 2 steps per block; medians of ${values.rounds} rounds`);
console.log('prompts          wave tokens/s  first block (ms, median)  cached prompt tokens  NFE per wave');
const row = (name: string, w: Wave[]) => {
  const tps = median(w.map((x) => x.tokens / x.seconds));
  console.log(`${name.padEnd(16)} ${tps.toFixed(1).padStart(15)} ${median(w.map((x) => x.firstMs)).toFixed(0).padStart(25)} ${median(w.map((x) => x.cached)).toFixed(0).padStart(21)} ${median(w.map((x) => x.nfe)).toFixed(0).padStart(13)}`);
  return { tps, first: median(w.map((x) => x.firstMs)) };
};
const s = row('shared prefix', results.shared);
const d = row('distinct', results.distinct);
console.log(`shared / distinct: throughput x${(s.tps / d.tps).toFixed(2)}, time to first block x${(s.first / d.first).toFixed(2)}`);
await core.close();
