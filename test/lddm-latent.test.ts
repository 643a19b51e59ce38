import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { SequenceLatent, mayReuseLogits, packLatents, unpackLatents, latentDim } from '../engine/loopholing.js';
import { remdmPlan, resolveRemasking } from '../engine/samplers/remdm-schedule.js';
import { remdmStep } from '../engine/samplers/remdm.js';
import { DuoSequence, type WindowedModel } from '../engine/samplers/duo-sequence.js';
import type { GenerationParams } from '../engine/protocol.js';
import { rngOf } from './helpers/seeded-rng.js';

// Runs from dist/test; the fixtures stay in the source tree (built by make_uniform_fixtures.py).
const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'uniform');
const V = 16;
const D = 8;
const MASK = 15;

async function session(name: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(join(FIX, name), { intraOpNumThreads: 1 });
}

interface Row {
  tokens: number[];
  latent?: SequenceLatent;
}

/** One batched call: rows padded to the longest, attention_mask marking real positions. */
async function call(s: ort.InferenceSession, rows: Row[], sigma = 1): Promise<{ logits: Float32Array; latent?: Float32Array; L: number }> {
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.tokens.length));
  const tok = new BigInt64Array(B * L);
  const att = new BigInt64Array(B * L);
  rows.forEach((r, b) => r.tokens.forEach((t, i) => ((tok[b * L + i] = BigInt(t)), (att[b * L + i] = 1n))));
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', tok, [B, L]),
    attention_mask: new ort.Tensor('int64', att, [B, L]),
    sigma: new ort.Tensor('float32', new Float32Array(B).fill(sigma), [B]),
  };
  if (s.inputNames.includes('latent_in')) {
    feeds.latent_in = new ort.Tensor('float32', packLatents(rows.map((r) => r.latent!), L, D), [B, L, D]);
  }
  const out = await s.run(feeds);
  const latent = out.latent_out?.data as Float32Array | undefined;
  if (latent) unpackLatents(latent, rows.map((r) => r.latent!), L, D);
  return { logits: out.logits!.data as Float32Array, latent, L };
}

function randomLatent(L: number, seed: number): SequenceLatent {
  const lat = new SequenceLatent(D, L);
  const rng = rngOf(seed);
  lat.data.forEach((_, i) => (lat.data[i] = rng() * 4 - 2));
  return lat;
}

test('the manifest decides: loopholing models never reuse logits', () => {
  assert.equal(mayReuseLogits({ loopholing: { latent_dim: 8 }, time_conditioning: false }), false);
  assert.equal(mayReuseLogits({ loopholing: undefined, time_conditioning: true }), false);
  assert.equal(mayReuseLogits({ loopholing: undefined, time_conditioning: false }), true);
  assert.equal(latentDim({ loopholing: { latent_dim: 8 } }), 8);
  assert.equal(latentDim({ loopholing: undefined }), null);
});

test('a latent changes the output; a zero LayerNorm gives exactly the base model', async () => {
  const [lddm, zero, base] = await Promise.all([session('lddm.onnx'), session('lddm-zero.onnx'), session('base.onnx')]);
  const tokens = [1, 4, MASK, MASK, 7, MASK];
  const a = await call(lddm, [{ tokens, latent: new SequenceLatent(D, 6) }]);
  const b = await call(lddm, [{ tokens, latent: randomLatent(6, 1) }]);
  let diff = 0;
  for (let i = 0; i < a.logits.length; i++) diff = Math.max(diff, Math.abs(a.logits[i]! - b.logits[i]!));
  assert.ok(diff > 1e-2, `latent_in must change the logits (max diff ${diff})`);

  const plain = await call(base, [{ tokens }]);
  for (const seed of [2, 3]) {
    const z = await call(zero, [{ tokens, latent: randomLatent(6, seed) }]);
    assert.deepEqual(Array.from(z.logits), Array.from(plain.logits), 'zeroed LayerNorm: latent has no effect');
  }
});

test('batched latents: each row gets its own latent back, padding does not leak', async () => {
  const lddm = await session('lddm.onnx');
  const short = { tokens: [2, MASK, 3], latent: randomLatent(3, 5) };
  const long = { tokens: [1, MASK, MASK, 9, 4, MASK], latent: randomLatent(6, 6) };
  const aloneShort = { tokens: short.tokens, latent: randomLatent(3, 5) };
  const aloneLong = { tokens: long.tokens, latent: randomLatent(6, 6) };
  const batched = await call(lddm, [short, long]);
  const s1 = await call(lddm, [aloneShort]);
  const s2 = await call(lddm, [aloneLong]);
  const close = (x: ArrayLike<number>, y: ArrayLike<number>, n: number, off = 0): void => {
    for (let i = 0; i < n; i++) assert.ok(Math.abs(x[off + i]! - y[i]!) < 1e-5, `at ${i}: ${x[off + i]} vs ${y[i]}`);
  };
  close(batched.logits, s1.logits, 3 * V);
  close(batched.logits, s2.logits, 6 * V, batched.L * V);
  close(short.latent.data, aloneShort.latent.data, 3 * D);
  close(long.latent.data, aloneLong.latent.data, 6 * D);
  assert.ok(short.latent.data.some((x, i) => x !== randomLatent(3, 5).data[i]), 'latent_out replaced the carried latent');
});

test('carrying the latent through a masked decode changes later steps; same seed, same output', async () => {
  const lddm = await session('lddm.onnx');
  const prompt = [1, 2, 3];
  const L = 8;
  const steps = 6;
  const r = resolveRemasking({ schedule: 'cap', eta: 0 });
  const decode = async (carry: boolean, seed: number): Promise<{ tokens: number[]; logits: Float32Array[] }> => {
    const rng = rngOf(seed);
    const canvas = new Int32Array(L).fill(MASK);
    const conf = new Float64Array(L).fill(-Infinity);
    const latent = new SequenceLatent(D, prompt.length + L);
    const seen: Float32Array[] = [];
    for (let k = 0; k < steps; k++) {
      if (!carry) latent.reset();
      const out = await call(lddm, [{ tokens: [...prompt, ...canvas], latent }]);
      seen.push(out.logits.slice());
      remdmStep({ plan: remdmPlan(k, steps, 1e-3, r), eta: 0, logits: out.logits, canvasStart: prompt.length, V, maskId: MASK, canvas, conf, x0: { temperature: 1, topP: 1, topK: 0 }, rng });
    }
    return { tokens: Array.from(canvas), logits: seen };
  };
  const carried = await decode(true, 4);
  const dropped = await decode(false, 4);
  assert.ok(!carried.tokens.includes(MASK));
  assert.deepEqual(Array.from(carried.logits[0]!), Array.from(dropped.logits[0]!), 'first step: no latent yet either way');
  assert.notDeepEqual(Array.from(carried.logits[1]!), Array.from(dropped.logits[1]!), 'second step sees the first step\'s latent');
  assert.deepEqual(await decode(true, 4), carried, 'same seed, same output');
});

test('LDDM-U: a Duo sequence feeds sigma and its latent, and carries latent_out into its next call', async () => {
  // lddm.onnx has LDDM-U's contract (tokens, attention_mask, sigma, latent_in -> logits, latent_out).
  const lddmu = await session('lddm.onnx');
  const model: WindowedModel = { vocabSize: V, maxLength: 32, eps: 1e-3, maskId: null, eosId: null, latentDim: D, readsSigma: true };
  const params: GenerationParams = {
    maxTokens: 6, sampler: 'duo', steps: 5, temperature: 1, topP: 1, topK: 0, seed: 3, ignoreEos: true, stopTokenIds: [], streamSteps: false,
  };
  /** Runs the engine's DuoSequence on the graph; `carry` false feeds a zero latent instead of the sequence's. */
  const decode = async (carry: boolean): Promise<{ tokens: number[]; sigmas: number[]; fed: Float32Array[]; returned: Float32Array[] }> => {
    const tokens: number[] = [];
    const seq = new DuoSequence(1, [1, 2, 3], params, model, { commit: (t) => tokens.push(...t), step: () => {} });
    const sigmas: number[] = [];
    const fed: Float32Array[] = [];
    const returned: Float32Array[] = [];
    for (let n = seq.next(); n.kind !== 'done'; n = seq.next()) {
      assert.equal(n.kind, 'call');
      if (n.kind !== 'call') break;
      const c = n.call;
      assert.deepEqual(c.outputs, ['latent_out']);
      const lat = c.inputs!.latent_in!;
      const L = c.tokens.length;
      assert.deepEqual(lat.dims, [L, D]);
      sigmas.push((c.inputs!.sigma!.data as Float32Array)[0]!);
      fed.push((lat.data as Float32Array).slice());
      const latent = new SequenceLatent(D, L);
      if (carry) latent.data.set(lat.data as Float32Array);
      const out = await call(lddmu, [{ tokens: Array.from(c.tokens), latent }], sigmas.at(-1)!);
      returned.push(latent.data.slice());
      seq.consume(out.logits.subarray(c.outputStart * V, (c.outputStart + c.outputLength) * V), { latent_out: { type: 'float32', data: latent.data, dims: [L, D] } });
    }
    return { tokens, sigmas, fed, returned };
  };
  const carried = await decode(true);
  assert.equal(carried.tokens.length, 6);
  assert.equal(carried.fed.length, 5, 'one call per step');
  assert.ok(carried.fed[0]!.every((x) => x === 0), 'the first call has no latent yet');
  for (let k = 1; k < carried.fed.length; k++) {
    assert.deepEqual(carried.fed[k], carried.returned[k - 1], `call ${k} reads what call ${k - 1} returned`);
  }
  assert.ok(carried.returned[0]!.some((x) => Math.abs(x) > 1e-3));
  assert.ok(carried.sigmas.every((s, k) => k === 0 || s < carried.sigmas[k - 1]!), `sigma falls step by step: ${carried.sigmas.join(', ')}`);
  const dropped = await decode(false);
  assert.deepEqual(dropped.sigmas, carried.sigmas);
  assert.notDeepEqual(dropped.returned[1], carried.returned[1], 'the second step sees the first step\'s latent');
  assert.deepEqual((await decode(true)).tokens, carried.tokens, 'same seed, same tokens');
});
