import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DuoSequence, MaskedWindowSequence, type WindowedModel } from '../engine/samplers/duo-sequence.js';
import { DecodeWindow } from '../engine/samplers/duo-window.js';
import type { GenerationParams } from '../engine/protocol.js';
import type { BatchTensor } from '../engine/row-tensor.js';
import { Scheduler, type Runner } from '../engine/scheduler.js';
import type { Sequence } from '../engine/sequence.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'uniform');
const V = 16;
const D = 8;

function params(over: Partial<GenerationParams>): GenerationParams {
  return { maxTokens: 20, sampler: 'duo', steps: 6, temperature: 1, topP: 1, topK: 0, seed: 0, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...over };
}

/** The engine's scheduler over a real graph: rows batched (padded), extra inputs and outputs by name. */
function runnerOf(s: ort.InferenceSession, batches: number[]): Runner {
  return {
    vocabSize: V,
    async run(_role, feeds, outputs) {
      batches.push(feeds.tokens!.dims[0]!);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const n of s.inputNames) {
        // The fixtures take sigma even where the family would not feed it (LDDM-M ignores it).
        const f = feeds[n] ?? { type: 'float32', data: new Float32Array(feeds.tokens!.dims[0]!), dims: [feeds.tokens!.dims[0]!] };
        ortFeeds[n] = new ort.Tensor(f.type, f.data, f.dims);
      }
      const out = await s.run(ortFeeds, ['logits', ...outputs]);
      const res: Record<string, BatchTensor> = {};
      for (const n of ['logits', ...outputs]) res[n] = { type: 'float32', data: out[n]!.data as Float32Array, dims: [...out[n]!.dims] };
      return res;
    },
  };
}

/** Runs the sequences to the end together; returns each one's committed tokens and the batch sizes seen. */
async function drive(s: ort.InferenceSession, make: (sink: { commit(t: number[]): void; step(): void }, i: number) => Sequence, n: number): Promise<{ out: number[][]; seqs: Sequence[]; batches: number[] }> {
  const out = Array.from({ length: n }, () => [] as number[]);
  const batches: number[] = [];
  let left = n;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sched = new Scheduler(runnerOf(s, batches), {
    finished: () => { if (--left === 0) done(); },
    failed: (_q, err) => { throw err; },
    call: () => {},
  }, 16, 16);
  const seqs = out.map((o, i) => make({ commit: (t) => o.push(...t), step: () => {} }, i));
  for (const q of seqs) sched.submit(q);
  const loop = sched.loop();
  await finished;
  sched.close();
  await loop;
  return { out, seqs, batches };
}

const duoModel: WindowedModel = { vocabSize: V, maxLength: 16, eps: 1e-3, maskId: null, eosId: null, latentDim: null, readsSigma: true };
const lddmModel: WindowedModel = { vocabSize: V, maxLength: 16, eps: 1e-3, maskId: 15, eosId: null, latentDim: D, readsSigma: false };

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

test('Duo sequences through the scheduler and a real graph: batched equals alone, windows slide, NFE = steps per window', async () => {
  const s = await ort.InferenceSession.create(join(FIX, 'duo.onnx'), { intraOpNumThreads: 1 });
  const specs = [{ prompt: [1, 2, 3], seed: 1, sampler: 'duo' }, { prompt: [4, 5, 6, 7, 8, 9], seed: 2, sampler: 'duo_greedy' }];
  const mk = (i: number) => (sink: Parameters<Parameters<typeof drive>[1]>[0]): DuoSequence =>
    new DuoSequence(i, specs[i]!.prompt, params({ sampler: specs[i]!.sampler, seed: specs[i]!.seed }), duoModel, sink);
  const both = await drive(s, (sink, i) => mk(i)(sink), 2);
  assert.ok(both.batches.some((b) => b === 2), 'the two sequences shared calls');
  const aloneA = await drive(s, (sink) => mk(0)(sink), 1);
  const aloneB = await drive(s, (sink) => mk(1)(sink), 1);
  assert.deepEqual(both.out[0], aloneA.out[0]);
  assert.deepEqual(both.out[1], aloneB.out[0]);
  assert.equal(both.out[0]!.length, 20);
  const [a, b] = both.seqs;
  assert.equal(a!.finishReason, 'length');
  // 20 tokens in windows of at most 13 (3-token prompt) then 8: two windows of 6 steps.
  assert.equal(a!.usage().nfe, 12);
  assert.equal(b!.usage().nfe, 18, 'a 6-token prompt leaves a 10-token first window, then 8, then 2');
  assert.deepEqual(a!.usage(), { promptTokens: 3, completionTokens: 20, nfe: 12, cachedTokens: 0 });
  const other = await drive(s, (sink) => new DuoSequence(0, [1, 2, 3], params({ seed: 9 }), duoModel, sink), 1);
  assert.notDeepEqual(other.out[0], aloneA.out[0], 'another seed, other tokens');
});

test('ReMDM on an LDDM graph: the latent is carried per sequence through batches and windows', async () => {
  const s = await ort.InferenceSession.create(join(FIX, 'lddm.onnx'), { intraOpNumThreads: 1 });
  const specs = [{ prompt: [1, 2], seed: 3 }, { prompt: [7, 8, 9, 10], seed: 4 }];
  const mk = (sink: Parameters<Parameters<typeof drive>[1]>[0], i: number): MaskedWindowSequence =>
    new MaskedWindowSequence(i, specs[i]!.prompt, params({ sampler: 'remdm', remasking: { schedule: 'rescale', eta: 0.3 }, maxTokens: 14, seed: specs[i]!.seed }), lddmModel, sink);
  const both = await drive(s, mk, 2);
  const alone = [(await drive(s, (sink) => mk(sink, 0), 1)).out[0], (await drive(s, (sink) => mk(sink, 1), 1)).out[0]];
  assert.deepEqual(both.out, alone);
  for (const out of both.out) {
    assert.equal(out.length, 14);
    assert.ok(!out.includes(15), 'no [MASK] is ever committed');
  }
  const seq = both.seqs[0] as MaskedWindowSequence;
  assert.ok(seq.latent!.data.some((x) => x !== 0), 'the latent holds the last call\'s hidden state');
});
