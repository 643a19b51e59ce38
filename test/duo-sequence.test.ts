import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DuoSequence, RemdmSequence, type ModelShape } from '../engine/samplers/duo-sequence.js';
import { DecodeWindow } from '../engine/samplers/duo-window.js';
import { packLatents, unpackLatents, SequenceLatent } from '../engine/loopholing.js';
import type { GenerationParams } from '../engine/protocol.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'uniform');
const V = 16;
const D = 8;

function rngOf(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function params(over: Partial<GenerationParams>): GenerationParams {
  return { maxTokens: 20, sampler: 'duo', steps: 6, temperature: 1, topP: 1, topK: 0, seed: 0, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...over };
}

type Seq = DuoSequence | RemdmSequence;

/** The scheduler's job in miniature: one padded batched call per tick for every live sequence. */
async function drive(s: ort.InferenceSession, seqs: Seq[]): Promise<number[][]> {
  const out = seqs.map(() => [] as number[]);
  for (;;) {
    const live = seqs.map((q, i) => ({ q, i, row: q.next() })).filter((x) => x.row !== null);
    if (live.length === 0) return out;
    const B = live.length;
    const L = Math.max(...live.map((x) => x.row!.tokens.length));
    const tok = new BigInt64Array(B * L);
    const att = new BigInt64Array(B * L);
    live.forEach((x, b) => x.row!.tokens.forEach((t, j) => ((tok[b * L + j] = BigInt(t)), (att[b * L + j] = 1n))));
    const feeds: Record<string, ort.Tensor> = {
      tokens: new ort.Tensor('int64', tok, [B, L]),
      attention_mask: new ort.Tensor('int64', att, [B, L]),
      sigma: new ort.Tensor('float32', Float32Array.from(live.map((x) => x.row!.sigma)), [B]),
    };
    const latents = live.map((x) => x.row!.latent).filter((l): l is SequenceLatent => l !== null);
    if (s.inputNames.includes('latent_in')) feeds.latent_in = new ort.Tensor('float32', packLatents(latents, L, D), [B, L, D]);
    const res = await s.run(feeds);
    if (res.latent_out) unpackLatents(res.latent_out.data as Float32Array, latents, L, D);
    const logits = res.logits!.data as Float32Array;
    live.forEach((x, b) => out[x.i]!.push(...x.q.consume(logits.subarray(b * L * V, (b + 1) * L * V)).committed));
  }
}

const duoModel: ModelShape = { vocabSize: V, maxLength: 16, eps: 1e-3, maskId: null, latentDim: null };
const lddmModel: ModelShape = { vocabSize: V, maxLength: 16, eps: 1e-3, maskId: 15, latentDim: D };

test('windows: context slides, the canvas keeps at least half the row, stop tokens end it', () => {
  const w = new DecodeWindow([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], { maxLength: 16, maxTokens: 20, stopTokenIds: [0], ignoreEos: false });
  const a = w.open()!;
  assert.equal(a.canvasLength, 8);
  assert.deepEqual(a.context, [5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(w.commit([20, 21, 22, 23, 24, 25, 26, 27]), [20, 21, 22, 23, 24, 25, 26, 27]);
  const b = w.open()!;
  assert.equal(b.dropped, 8, 'the row lost its first 8 positions');
  assert.deepEqual(b.context, [20, 21, 22, 23, 24, 25, 26, 27]);
  assert.deepEqual(w.commit([30, 31, 0, 33, 34, 35, 36, 37]), [30, 31]);
  assert.equal(w.finish, 'stop');
  assert.equal(w.open(), null);
  const c = new DecodeWindow([1], { maxLength: 16, maxTokens: 3, stopTokenIds: [0], ignoreEos: true });
  assert.equal(c.open()!.canvasLength, 3);
  assert.deepEqual(c.commit([0, 5, 6]), [0, 5, 6], 'ignore_eos keeps going');
  assert.equal(c.finish, 'length');
});

test('Duo sequences through a real graph: batched equals alone, windows slide, NFE = steps per window', async () => {
  const s = await ort.InferenceSession.create(join(FIX, 'duo.onnx'), { intraOpNumThreads: 1 });
  const mk = (prompt: number[], seed: number, sampler = 'duo'): DuoSequence => new DuoSequence(duoModel, prompt, params({ sampler }), rngOf(seed));
  const [a, b] = [mk([1, 2, 3], 1), mk([4, 5, 6, 7, 8, 9], 2, 'duo_greedy')];
  const batched = await drive(s, [a, b]);
  const aloneA = await drive(s, [mk([1, 2, 3], 1)]);
  const aloneB = await drive(s, [mk([4, 5, 6, 7, 8, 9], 2, 'duo_greedy')]);
  assert.deepEqual(batched[0], aloneA[0]);
  assert.deepEqual(batched[1], aloneB[0]);
  assert.equal(batched[0]!.length, 20);
  assert.equal(a.finish, 'length');
  // 20 tokens in windows of at most 13 (3-token prompt) then 8: two windows of 6 steps.
  assert.equal(a.nfe, 12);
  assert.equal(b.nfe, 18, 'a 6-token prompt leaves a 10-token first window, then 8, then 2');
});

test('ReMDM on an LDDM graph: the latent is carried per sequence through batches and windows', async () => {
  const s = await ort.InferenceSession.create(join(FIX, 'lddm.onnx'), { intraOpNumThreads: 1 });
  const mk = (prompt: number[], seed: number): RemdmSequence =>
    new RemdmSequence(lddmModel, prompt, params({ sampler: 'remdm', remasking: { schedule: 'rescale', eta: 0.3 }, maxTokens: 14 }), rngOf(seed));
  const batched = await drive(s, [mk([1, 2], 3), mk([7, 8, 9, 10], 4)]);
  const alone = [(await drive(s, [mk([1, 2], 3)]))[0], (await drive(s, [mk([7, 8, 9, 10], 4)]))[0]];
  assert.deepEqual(batched, alone);
  for (const out of batched) {
    assert.equal(out.length, 14);
    assert.ok(!out.includes(15), 'no [MASK] is ever committed');
  }
  const seq = mk([1, 2], 3);
  await drive(s, [seq]);
  assert.ok(seq.latent!.data.some((x) => x !== 0), 'the latent holds the last call\'s hidden state');
});
