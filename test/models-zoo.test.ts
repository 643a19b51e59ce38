// Every committed model directory is servable: its model.json passes the engine's schema, its
// files exist, and every graph (and each precision variant of it) loads in onnxruntime-node and runs on feeds built from the
// inputs its manifest declares, answering with finite outputs of the shapes the manifest
// implies. Beyond shapes, each graph is held to what its inputs are for: padding is invisible,
// a denoiser is bidirectional and an AR judge causal, sigma and latent_in change the answer,
// a generation order hides the tokens it has not reached, a cache is read and its mask obeyed,
// and E2D2's encoder caches block by block exactly what it computes for the blocks at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { loadModelDir, type Manifest } from '../engine/manifest.js';

const ZOO = resolve(import.meta.dirname, '..', '..', 'models', 'zoo');

/** Tokens per row: two blocks of the block models' smallest size (4). */
const L = 8;
/** Slots of past / context the cache inputs get when they get a real one. */
const P = 4;

type Feeds = Record<string, ort.Tensor>;
interface Graph {
  m: Manifest;
  role: string;
  inputs: readonly string[];
  outputs: readonly string[];
  session: ort.InferenceSession;
}

const i64 = (xs: readonly number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), dims);
const f32 = (xs: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', xs, dims);
const range = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);

/** Seeded values in [-0.25, 0.25): a past or latent that is not all zeros. */
function noise(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 0.5;
  }
  return a;
}

/** Ordinary ids, clear of the special ones at the bottom of the vocabulary. */
function ids(m: Manifest, n = L, salt = 0): number[] {
  return Array.from({ length: n }, (_, i) => 4 + ((i * 37 + salt * 101) % (m.vocab_size - 4)));
}

/** Layers of a cache input: BD3-LM caches every layer; E2D2's past is the encoder's, its context the decoder's. */
function cacheLayers(m: Manifest, input: string): number {
  const split = m.architecture[input.startsWith('context_') ? 'decoder_layers' : 'encoder_layers'];
  return typeof split === 'number' ? split : m.architecture.n_layers;
}

/** [1, layers, key/value heads, slots, head_dim], the cache layout of the engine's block tables. */
function kvDims(m: Manifest, input: string, slots: number): number[] {
  const a = m.architecture;
  return [1, cacheLayers(m, input), a.n_kv_heads ?? a.n_heads, slots, a.head_dim];
}

/** A cache input's prefix: past_keys -> past, present_context_keys -> context. */
const cacheOf = (name: string): string => name.replace(/^present_/, '').replace(/_(keys|values|mask)$/, '');

/**
 * The feed of each input a manifest may name, for a row of `tokens`. Caches default to what the
 * engine sends for an empty one (one masked slot); an input not listed here fails the test.
 */
function feedFor(m: Manifest, input: string, tokens: readonly number[]): ort.Tensor {
  const n = tokens.length;
  switch (input) {
    case 'tokens': return i64(tokens, [1, n]);
    case 'attention_mask': return i64(tokens.map(() => 1), [1, n]);
    case 'positions': return i64(range(0, n), [1, n]);
    case 'sigma': return f32(Float32Array.of(1), [1]);
    case 'latent_in': return f32(new Float32Array(n * m.loopholing!.latent_dim), [1, n, m.loopholing!.latent_dim]);
    case 'ranks': return i64(range(0, n), [1, n]);
    case 'block_size': return i64([m.block!.size], [1]);
    case 'past_keys': case 'past_values': case 'context_keys': case 'context_values':
    {
      const dims = kvDims(m, input, 1);
      return f32(new Float32Array(dims.reduce((x, y) => x * y, 1)), dims);
    }
    case 'past_mask': case 'context_mask': return i64([0], [1, 1]);
    default: throw new Error(`${m.name}: no feed for the declared input '${input}'`);
  }
}

function feeds(g: Graph, tokens: readonly number[], over: Feeds = {}): Feeds {
  return Object.fromEntries(g.inputs.map((i) => [i, over[i] ?? feedFor(g.m, i, tokens)]));
}

/** The dims the manifest implies for an output of a row of `n` tokens. */
function outputDims(m: Manifest, output: string, n: number): number[] {
  if (output === 'logits') return [1, n, m.vocab_size];
  if (output === 'hidden') return [1, n, m.architecture.d_model];
  if (output === 'latent_out') return [1, n, m.loopholing!.latent_dim];
  if (output.startsWith('present_')) return kvDims(m, cacheOf(output) + '_keys', n);
  throw new Error(`${m.name}: no expected shape for the declared output '${output}'`);
}

const data = (t: ort.Tensor | undefined): Float32Array => t!.data as Float32Array;

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Logits of positions [from, to) of a [1, n, V] output. */
const rows = (t: ort.Tensor | undefined, V: number, from: number, to: number): Float32Array => data(t).subarray(from * V, to * V);

/** Positions [from, from + n) of a [1, layers, heads, slots, dim] cache tensor. */
function slots(t: ort.Tensor, from: number, n: number): Float32Array {
  const [, layers, heads, len, dim] = t.dims as number[];
  const out = new Float32Array(layers! * heads! * n * dim!);
  let o = 0;
  for (let lh = 0; lh < layers! * heads!; lh++) {
    const base = (lh * len! + from) * dim!;
    out.set((t.data as Float32Array).subarray(base, base + n * dim!), o);
    o += n * dim!;
  }
  return out;
}

/** Differences below this are float noise; a real dependence moves logits by far more. */
const SAME = 1e-4;
const MOVED = 1e-3;

for (const name of readdirSync(ZOO)) {
  test(`models/zoo/${name}: every graph runs on its declared inputs and does what they are for`, async (t) => {
    const md = loadModelDir(join(ZOO, name));
    const m = md.manifest;
    const V = m.vocab_size;
    const graphs: Record<string, Graph> = {};
    for (const [role, spec] of Object.entries(m.graphs)) {
      const session = await ort.InferenceSession.create(md.graphPaths[role]!);
      assert.deepEqual([...session.inputNames].sort(), [...spec.inputs].sort(), `${role}: the graph's inputs are the manifest's`);
      for (const o of spec.outputs) assert.ok(session.outputNames.includes(o), `${role}: the graph has no output ${o}`);
      graphs[role] = { m, role, inputs: spec.inputs, outputs: spec.outputs, session };
    }
    t.after(async () => {
      for (const g of Object.values(graphs)) await g.session.release();
    });

    for (const g of Object.values(graphs)) {
      const has = (i: string): boolean => g.inputs.includes(i);
      const run = (tokens: readonly number[], over: Feeds = {}): Promise<ort.InferenceSession.OnnxValueMapType> => g.session.run(feeds(g, tokens, over));
      const x = ids(m);

      await t.test(`${g.role}: declared outputs, shaped and finite`, async () => {
        const out = await run(x);
        for (const o of g.outputs) {
          assert.deepEqual(out[o]!.dims, outputDims(m, o, L), `${g.role}.${o} dims`);
          assert.ok(data(out[o]).every(Number.isFinite), `${g.role}.${o} is finite`);
        }
      });

      if (g.outputs.includes('logits') && !has('past_mask') && !has('context_mask')) {
        await t.test(`${g.role}: padded positions change nothing`, async () => {
          const short = x.slice(0, L - 2);
          const padded = [...short, 0, 0];
          const mask = i64([...short.map(() => 1), 0, 0], [1, L]);
          const a = await run(padded, { attention_mask: mask });
          const b = await run(short);
          assert.ok(maxDiff(rows(a.logits, V, 0, L - 2), data(b.logits)) < SAME);
        });
      }

      if (g.outputs.includes('logits') && !has('ranks') && !has('past_mask')) {
        await t.test(`${g.role}: ${m.family === 'ar' ? 'causal' : 'bidirectional'} attention`, async () => {
          const y = [...x.slice(0, L - 1), ids(m, 1, 7)[0]!];
          const d = maxDiff(rows((await run(x)).logits, V, 0, 1), rows((await run(y)).logits, V, 0, 1));
          if (m.family === 'ar') assert.ok(d < SAME, `the first position saw the last token (${d})`);
          else assert.ok(d > MOVED, `the first position did not see the last token (${d})`);
        });
      }

      if (has('sigma')) {
        await t.test(`${g.role}: the noise level sigma conditions the logits`, async () => {
          assert.equal(m.time_conditioning, true);
          const a = await run(x, { sigma: f32(Float32Array.of(1), [1]) });
          const b = await run(x, { sigma: f32(Float32Array.of(0.05), [1]) });
          assert.ok(maxDiff(data(a.logits), data(b.logits)) > MOVED);
        });
      }

      if (has('latent_in')) {
        await t.test(`${g.role}: the carried latent reaches the logits`, async () => {
          const D = m.loopholing!.latent_dim;
          const a = await run(x);
          const b = await run(x, { latent_in: f32(noise(L * D, 3), [1, L, D]) });
          assert.ok(maxDiff(data(a.logits), data(b.logits)) > MOVED);
          assert.ok(maxDiff(data(a.latent_out), data(b.latent_out)) > MOVED);
        });
      }

      if (has('ranks')) {
        await t.test(`${g.role}: a position sees exactly the tokens earlier in the generation order`, async () => {
          const order = [3, 0, 7, 1, 5, 2, 6, 4]; // position 2 comes last, position 1 first
          const ranks = i64(order, [1, L]);
          const base = await run(x, { ranks });
          const lastChanged = await run(x.map((v, i) => (i === 2 ? ids(m, 1, 9)[0]! : v)), { ranks });
          assert.ok(maxDiff(data(base.logits), data(lastChanged.logits)) < SAME, 'the last token in the order was seen');
          const firstChanged = await run(x.map((v, i) => (i === 1 ? ids(m, 1, 9)[0]! : v)), { ranks });
          assert.ok(maxDiff(rows(base.logits, V, 1, 2), rows(firstChanged.logits, V, 1, 2)) < SAME, 'a position saw its own token');
          assert.ok(maxDiff(rows(base.logits, V, 2, 3), rows(firstChanged.logits, V, 2, 3)) > MOVED, 'the first token in the order was not seen');
        });
      }

      for (const cache of ['past', 'context']) {
        if (!has(`${cache}_mask`)) continue;
        await t.test(`${g.role}: ${cache} cache of the declared shape is read and its mask obeyed`, async () => {
          const kv = (which: string, seed: number): ort.Tensor => {
            const dims = kvDims(m, `${cache}_${which}`, P);
            return f32(noise(dims.reduce((a, b) => a * b, 1), seed), dims);
          };
          const block = x.slice(0, 4);
          const at = { positions: i64(range(P, 4), [1, 4]) };
          const real = { ...at, [`${cache}_keys`]: kv('keys', 1), [`${cache}_values`]: kv('values', 2) };
          const read = await run(block, { ...real, [`${cache}_mask`]: i64(Array(P).fill(1), [1, P]) });
          const masked = await run(block, { ...real, [`${cache}_mask`]: i64(Array(P).fill(0), [1, P]) });
          const none = await run(block, at);
          assert.ok(maxDiff(data(read.logits ?? read.hidden), data(none.logits ?? none.hidden)) > MOVED, 'the cache was not read');
          assert.ok(maxDiff(data(masked.logits ?? masked.hidden), data(none.logits ?? none.hidden)) < SAME, 'a masked cache slot was read');
        });
      }

      if (has('block_size') && g.outputs.includes('present_keys')) {
        await t.test(`${g.role}: caching block by block is exact`, async () => {
          const bs = m.block!.size;
          const whole = await run(x);
          const first = await run(x.slice(0, bs));
          const second = await run(x.slice(bs, 2 * bs), {
            positions: i64(range(bs, bs), [1, bs]),
            past_keys: first.present_keys!, past_values: first.present_values!, past_mask: i64(Array(bs).fill(1), [1, bs]),
          });
          for (const o of g.outputs.filter((n) => n.startsWith('present_'))) {
            assert.ok(maxDiff(slots(whole[o]!, bs, bs), slots(second[o]!, 0, bs)) < SAME, `${o} of the second block`);
          }
        });
      }

      // Each precision variant is the same graph: same inputs and outputs, same shapes, finite
      // (how close its numbers are is test/int8-quality.test.ts's job).
      for (const [precision, path] of Object.entries(md.variantPaths[g.role] ?? {})) {
        await t.test(`${g.role} at ${precision}: the fp32 graph's inputs and outputs, shaped and finite`, async () => {
          const v = await ort.InferenceSession.create(path);
          try {
            assert.deepEqual([...v.inputNames].sort(), [...g.inputs].sort());
            const f = feeds(g, x);
            const [a, b] = [await g.session.run(f), await v.run(f)];
            for (const o of g.outputs) {
              assert.deepEqual(b[o]!.dims, a[o]!.dims, `${g.role}.${o} dims at ${precision}`);
              assert.ok(data(b[o]).every(Number.isFinite), `${g.role}.${o} is finite at ${precision}`);
            }
          } finally {
            await v.release();
          }
        });
      }
    }
  });
}
