// kv_cache (Fast-dLLM's prefix and dual caches on MDLM's denoiser_kv graph, issue 15) through
// the real engine: `prefix` recomputed at every call gives `off`'s tokens; the approximate modes
// give valid output; the kept K/V are charged to the engine's pool while a sequence runs and
// given back at its end, its cancel, or when the budget cannot hold them (then it runs uncached
// and still finishes). Then the settings through a real server: the official openai client,
// a WebSocket client, and the errors naming the field.
//
// Exactness is stated at temperature 0: the two graphs agree to float noise (max |dlogit| 6e-5
// on tiny-mdlm, 1.4e-3 on the default, docs/approx-cache.md), which never moves an arg max
// here but does move about 0.6% of inverse-CDF draws at temperature 1 on tiny-mdlm's flat
// distributions, so sampled texts diverge after the first such draw.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { modelInfo } from '../engine/core.js';
import { loadModelDir, type Manifest } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { validateParams } from '../engine/validate.js';
import { resolveParams } from '../server/settings.js';
import { serveWithClient } from './helpers/openai.js';
import { cancelGivesKvBack, KvCore as Core, refusal as refusalOf, runsUncachedOverBudget } from './helpers/kv-core.js';
import { waitIdle, type Served } from './helpers/served.js';

const TINY = 'models/zoo/tiny-mdlm';
const DEFAULT = 'models/zoo/default';

const params = (p: Partial<GenerationParams>): GenerationParams => ({
  maxTokens: 40, sampler: 'confidence_topk', steps: 16, temperature: 0, topP: 1, topK: 0, seed: 5,
  ignoreEos: true, stopTokenIds: [], streamSteps: false, ...p,
});
const PROMPT = [5, 6, 7, 8, 9];

let tiny: Core;
before(async () => { tiny = await Core.open(TINY); });
after(() => tiny.core.close());

test('tiny-mdlm: prefix refreshed at every call gives off\'s tokens, every masked sampler, across sliding windows', async () => {
  const cases: Partial<GenerationParams>[] = [
    { sampler: 'confidence_topk', maxTokens: 150 }, // past the first 64-token window: slides twice
    { sampler: 'ddpm', steps: 8 },
    { sampler: 'ddpm_cache', steps: 64 },
    { sampler: 'first_hitting', maxTokens: 24 },
    { sampler: 'confidence_threshold', confidenceThreshold: 0.2, blockSize: 48 },
  ];
  for (const c of cases) {
    const off = await tiny.run(PROMPT, params(c)).result;
    const exact = await tiny.run(PROMPT, params({ ...c, kvCache: 'prefix', cacheRefresh: 1 })).result;
    assert.equal(off.tokens.length, c.maxTokens ?? 40);
    assert.deepEqual(exact.tokens, off.tokens, `${c.sampler}: prefix, cache_refresh 1 = off`);
    assert.equal(exact.done.usage.nfe, off.done.usage.nfe, `${c.sampler}: the same number of calls`);
  }
});

test('tiny-mdlm: approximate modes give valid output and charge the pool only while they run', async () => {
  const V = tiny.core.model.vocabSize;
  const off = await tiny.run(PROMPT, params({ maxTokens: 100, temperature: 1 })).result;
  for (const kv of [{ kvCache: 'prefix' }, { kvCache: 'dual' }, { kvCache: 'dual', cacheRefresh: 3 }, { kvCache: 'prefix', cacheRefresh: 2 }] as const) {
    const from = tiny.stats.length;
    const r = await tiny.run(PROMPT, params({ maxTokens: 100, temperature: 1, ...kv })).result;
    assert.equal(r.done.reason, 'length');
    assert.equal(r.tokens.length, 100, JSON.stringify(kv));
    assert.ok(r.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < V && t !== tiny.core.model.maskId), 'real tokens, no [MASK]');
    // Same sampler, same number of committed tokens per call: the same number of calls as off.
    assert.equal(r.done.usage.nfe, off.done.usage.nfe);
    const during = tiny.stats.slice(from).map((s) => s.cacheBytes);
    assert.ok(Math.max(...during) > 0, `${JSON.stringify(kv)}: K/V held in the pool while running`);
    assert.equal(tiny.lastBytes, 0, 'and given back at the end');
  }
});

test('tiny-mdlm: cache_block sets the sub-block: prefix refreshed every call = off at any block, dual over one window-long block = off', async () => {
  const c = { sampler: 'confidence_topk' as const, maxTokens: 48, steps: 12 };
  const off = await tiny.run(PROMPT, params(c)).result;
  for (const cacheBlock of [1, 8, 48]) {
    const exact = await tiny.run(PROMPT, params({ ...c, kvCache: 'prefix', cacheRefresh: 1, cacheBlock })).result;
    assert.deepEqual(exact.tokens, off.tokens, `prefix, cache_refresh 1, cache_block ${cacheBlock} = off`);
  }
  // One sub-block as long as the window: dual's order is off's, and a refresh at every call is exact.
  const one = await tiny.run(PROMPT, params({ ...c, kvCache: 'dual', cacheRefresh: 1, cacheBlock: 64 })).result;
  assert.deepEqual(one.tokens, off.tokens, 'dual, cache_refresh 1, one sub-block over the whole window = off');
  // Smaller sub-blocks decode left to right in pieces: the order, hence the sampled text, changes
  // with the block (greedy, tiny-mdlm's most confident positions already run left to right).
  const texts = new Set<string>();
  for (const cacheBlock of [4, 16, 64]) {
    const r = await tiny.run(PROMPT, params({ ...c, temperature: 1, kvCache: 'dual', cacheRefresh: 1, cacheBlock })).result;
    assert.equal(r.tokens.length, 48);
    assert.equal(r.done.usage.nfe, off.done.usage.nfe, `cache_block ${cacheBlock}: the window's steps split over its sub-blocks`);
    texts.add(r.tokens.join());
  }
  assert.equal(texts.size, 3, 'each sub-block length gives its own decoding order');
});

test('tiny-mdlm: a cancel gives the K/V back; the others go on', () => cancelGivesKvBack(tiny, PROMPT, params));

test('tiny-mdlm: K/V over the budget: the request runs uncached (exact) and finishes', async () => {
  const { dual } = await runsUncachedOverBudget(TINY, 4096, PROMPT, params);
  assert.equal(dual.done.reason, 'length');
  assert.equal(tiny.stats.at(-1)!.kvFallbacksTotal, 0, 'none under the default budget');
});

test('default model: prefix refreshed at every call gives off\'s tokens; dual decodes', async () => {
  const d = await Core.open(DEFAULT);
  try {
    const p = params({ maxTokens: 48, steps: 12 });
    const off = await d.run(PROMPT, p).result;
    const exact = await d.run(PROMPT, { ...p, kvCache: 'prefix', cacheRefresh: 1 }).result;
    assert.deepEqual(exact.tokens, off.tokens);
    const dual = await d.run(PROMPT, { ...p, kvCache: 'dual' }).result;
    assert.equal(dual.tokens.length, 48);
    assert.equal(d.lastBytes, 0);
  } finally {
    await d.core.close();
  }
});

const refusal = (m: Manifest, p: Partial<GenerationParams>, precision = 'fp32') => refusalOf(m, params(p), precision);

test('tiny-mdlm: dual drafts come from the current sub-block\'s logits, and are -1 outside it', async () => {
  // Greedy ddpm_cache: a step that decodes nothing is followed by a local step on the same
  // logits, which decodes exactly the drafts the frame between them showed.
  const c = await Core.open(TINY);
  try {
    const mask = loadModelDir(TINY).manifest.special_tokens.mask!;
    const { id, result } = c.run([5, 6, 7], { ...params({ sampler: 'ddpm_cache', steps: 64, temperature: 0, maxTokens: 64 }), kvCache: 'dual', streamSteps: true, streamDrafts: true });
    await result;
    const frames = c.steps.filter((f) => f.id === id);
    let checked = 0;
    let outside = 0;
    for (let k = 1; k + 1 < frames.length; k++) {
      const [prev, cur, next] = [frames[k - 1]!, frames[k]!, frames[k + 1]!];
      for (let i = 0; i < cur.canvas.length; i++) {
        if (cur.canvas[i] !== mask) assert.equal(cur.drafts![i], -1);
        else if (cur.drafts![i] === -1) outside++;
      }
      if (prev.offset !== cur.offset || cur.offset !== next.offset || prev.canvas.join() !== cur.canvas.join()) continue;
      for (let i = 0; i < cur.canvas.length; i++) {
        if (cur.canvas[i] === mask && next.canvas[i] !== mask) {
          assert.equal(next.canvas[i], cur.drafts![i], `frame ${k + 1} position ${i}`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 8, `only ${checked} decoded positions followed an unchanged frame`);
    assert.ok(outside > 0, 'masked positions outside the current sub-block carry no draft');
  } finally {
    await c.core.close();
  }
});

test('validateParams: kv_cache, cache_refresh and cache_block errors name the field and say why', () => {
  const m = loadModelDir(TINY).manifest;
  validateParams(modelInfo(m, 'cpu'), params({ kvCache: 'dual', cacheRefresh: 4 }));
  validateParams(modelInfo(m, 'cpu'), params({ kvCache: 'prefix', cacheBlock: m.max_length }));
  for (const cacheBlock of [0, -3, 2.5, m.max_length + 1]) {
    const e = refusal(m, { kvCache: 'dual', cacheBlock });
    assert.equal(e.field, 'cache_block');
    assert.match(e.detail, new RegExp(`integer from 1 to the model's max_length ${m.max_length}`));
  }
  const offBlock = refusal(m, { cacheBlock: 16 });
  assert.equal(offBlock.field, 'cache_block');
  assert.match(offBlock.detail, /kv_cache is 'off'/);
  assert.equal(refusal(m, { cacheRefresh: 2 }).field, 'cache_refresh');
  assert.match(refusal(m, { kvCache: 'prefix', cacheRefresh: 0 }).detail, /positive integer/);
  assert.match(refusal(m, { kvCache: 'bogus' as 'dual' }).detail, /one of off, prefix, dual/);
  const noKv: Manifest = { ...m, graphs: { denoiser: m.graphs.denoiser! } };
  const e = refusal(noKv, { kvCache: 'prefix' });
  assert.equal(e.field, 'kv_cache');
  assert.match(e.detail, /no denoiser_kv graph/);
  assert.match(refusal(m, { kvCache: 'prefix', sampler: 'remdm' }).detail, /remasks/);
  assert.match(refusal(m, { kvCache: 'prefix' }, 'int8').detail, /fp32 only/);
  const bd3 = loadModelDir('models/zoo/bd3lm-brown').manifest;
  const f = refusal(bd3, { kvCache: 'dual', blockSize: bd3.block!.size });
  assert.equal(f.field, 'kv_cache');
  assert.match(f.detail, /bd3lm; the whole-sequence K\/V caches exist for MDLM and Duo only/);
});

test('a model.json default kv_cache reaches requests that set none, and yields to remdm', () => {
  const m = loadModelDir(TINY).manifest;
  const info = modelInfo({ ...m, defaults: { ...m.defaults, kv_cache: 'dual', cache_refresh: 6, cache_block: 16 } }, 'cpu');
  assert.equal(info.defaults.kvCache, 'dual');
  const p = resolveParams({}, info, 4, 1);
  assert.deepEqual([p.kvCache, p.cacheRefresh, p.cacheBlock], ['dual', 6, 16]);
  assert.equal(resolveParams({ cache_block: 8 }, info, 4, 1).cacheBlock, 8, "a request's cache_block over the default's");
  const own = resolveParams({ kv_cache: 'prefix' }, info, 4, 1);
  assert.deepEqual([own.kvCache, own.cacheRefresh, own.cacheBlock], ['prefix', undefined, undefined], "the default's refresh and block go with the default's mode");
  const off = resolveParams({ kv_cache: 'off' }, info, 4, 1);
  assert.equal(off.kvCache, undefined);
  const remdm = resolveParams({ sampler: 'remdm' }, info, 4, 1);
  assert.deepEqual([remdm.kvCache, remdm.cacheRefresh, remdm.cacheBlock], [undefined, undefined, undefined]);
  assert.equal(modelInfo(m, 'cpu').defaults.kvCache, undefined, 'no default in model.json: off');
});

// ---- through a real server ----

test('server: kv_cache over the openai client, SSE and a WebSocket; errors name the field', async () => {
  let s: Served | null = null;
  try {
    const sc = await serveWithClient();
    s = sc.s;
    const { client, model } = sc;
    const body = { model, prompt: 'The old', max_tokens: 40, steps: 10, ignore_eos: true, temperature: 0, seed: 3 };
    const create = (extra: Record<string, unknown>) => client.completions.create({ ...body, ...extra } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
    const off = await create({});
    const exact = await create({ kv_cache: 'prefix', cache_refresh: 1 });
    assert.equal(exact.choices[0]!.text, off.choices[0]!.text);
    const exactBlock = await create({ kv_cache: 'prefix', cache_refresh: 1, cache_block: 8 });
    assert.equal(exactBlock.choices[0]!.text, off.choices[0]!.text);
    const dual = await create({ kv_cache: 'dual', temperature: 1 });
    assert.equal(dual.usage!.completion_tokens, 40);

    // Streaming: the same text in chunks.
    const stream = await client.completions.create({ ...body, stream: true, kv_cache: 'prefix', cache_refresh: 1 } as unknown as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, off.choices[0]!.text);

    for (const [extra, param] of [
      [{ kv_cache: 'sometimes' }, 'kv_cache'],
      [{ cache_refresh: 2 }, 'cache_refresh'],
      [{ kv_cache: 'dual', cache_refresh: 0 }, 'cache_refresh'],
      [{ kv_cache: 'dual', cache_block: 0 }, 'cache_block'],
      [{ kv_cache: 'dual', cache_block: 4.5 }, 'cache_block'],
      [{ cache_block: 16 }, 'cache_block'],
      [{ kv_cache: 'prefix', sampler: 'remdm' }, 'kv_cache'],
    ] as const) {
      await assert.rejects(create(extra), (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError, String(err));
        assert.equal((err.error as { param?: string }).param, param, JSON.stringify(extra));
        return true;
      });
    }

    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/v1/ws`);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>));
    const settings = { max_tokens: 40, steps: 10, ignore_eos: true, temperature: 0, seed: 3 };
    ws.send(JSON.stringify({ type: 'generate', id: 'k1', prompt: 'The old', settings: { ...settings, kv_cache: 'prefix', cache_refresh: 1 } }));
    ws.send(JSON.stringify({ type: 'generate', id: 'k2', prompt: 'The old', settings: { ...settings, kv_cache: 'dual', cache_refresh: -1 } }));
    ws.send(JSON.stringify({ type: 'generate', id: 'k3', prompt: 'The old', settings: { ...settings, kv_cache: 'dual', cache_block: 100000 } }));
    const until = async (pred: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (let i = 0; i < 400; i++) {
        const f = frames.find(pred);
        if (f) return f;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no such frame; got ${JSON.stringify(frames.slice(-3))}`);
    };
    await until((f) => f.type === 'done' && f.id === 'k1');
    const text1 = frames.filter((f) => f.type === 'delta' && f.id === 'k1').map((f) => f.text as string).join('');
    assert.equal(text1, off.choices[0]!.text);
    const err = await until((f) => f.type === 'error' && f.id === 'k2');
    assert.match(String(err.message), /settings\.cache_refresh/);
    const err3 = await until((f) => f.type === 'error' && f.id === 'k3');
    assert.match(String(err3.message), /cache_block/);
    ws.close();
    const m = await waitIdle(s.base);
    assert.equal(m.get('dlm_cache_usage_ratio'), 0);
    assert.equal(m.get('dlm_kv_cache_fallbacks_total'), 0);
  } finally {
    await s?.close();
  }
});
