// Masked-diffusion samplers against exact distributions: with a network whose logits are the
// same everywhere, every decoded token is an independent draw from the shaped softmax over the
// non-[MASK] ids, whatever the order of unmasking; token frequencies must pass a chi-square test
// at the 0.1% level (seeds are fixed, so the outcome is reproducible).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../engine/rng.js';
import { confidenceThresholdStep, confidenceTopkStep, ddpmStep, firstHittingStep, maskedCount, type MaskedStep } from '../engine/samplers/masked.js';
import { distribution, sample } from '../engine/samplers/categorical.js';
import { CHI2_999, FIXED_LOGITS, MASK, chiSquare, expectedDistribution } from './helpers/fixed-logits.js';

const V = FIXED_LOGITS.length;
const W = 8;

function logitsFor(W: number): Float32Array {
  const out = new Float32Array(W * V);
  for (let j = 0; j < W; j++) out.set(FIXED_LOGITS, j * V);
  return out;
}

type StepFn = (x: MaskedStep) => number;

/** Decode `windows` windows of W tokens with a sampler; count tokens and steps. */
function decodeMany(step: StepFn, steps: number, shaping: MaskedStep['shaping'], windows: number, seed = 7) {
  const rng = new Rng(seed);
  const counts = new Array<number>(V).fill(0);
  let calls = 0;
  for (let w = 0; w < windows; w++) {
    const canvas = new Int32Array(W).fill(MASK);
    for (let i = 0; maskedCount(canvas, MASK) > 0; i++) {
      assert.ok(i < 10 * W + steps, 'the sampler stopped making progress');
      step({ canvas, maskId: MASK, logits: logitsFor(W), V, shaping, rng, step: i, steps, eps: 1e-3 });
      calls++;
    }
    for (const t of canvas) counts[t]!++;
  }
  return { counts, calls };
}

const shapings = [
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.7, topK: 3, topP: 1 },
  { temperature: 1.3, topK: 0, topP: 0.8 },
];

for (const shaping of shapings) {
  for (const [name, fn] of [['ddpm', ddpmStep], ['first_hitting', firstHittingStep]] as const) {
    test(`${name} draws tokens from the shaped x0 distribution (T=${shaping.temperature}, top_k=${shaping.topK}, top_p=${shaping.topP})`, () => {
      const { counts } = decodeMany(fn, 16, shaping, 500);
      const probs = expectedDistribution(FIXED_LOGITS, MASK, shaping.temperature, shaping.topK, shaping.topP);
      assert.equal(counts[MASK], 0, 'SUBS: [MASK] is never drawn');
      const { stat, df } = chiSquare(counts, probs);
      assert.ok(stat < CHI2_999[df]!, `chi-square ${stat.toFixed(2)} >= ${CHI2_999[df]} (df ${df}); counts ${counts}`);
    });
  }
}

test('the chi-square check rejects a wrong distribution (the test can fail)', () => {
  const { counts } = decodeMany(ddpmStep, 16, shapings[0]!, 500);
  const wrong = expectedDistribution(FIXED_LOGITS, MASK, 2.0);
  const { stat, df } = chiSquare(counts, wrong);
  assert.ok(stat > CHI2_999[df]!, `a temperature-2 distribution should not fit: ${stat}`);
});

test('ddpm: never more calls than the planned steps (the last step unmasks the rest); first_hitting: one token per call', () => {
  const { calls } = decodeMany(ddpmStep, 4, shapings[0]!, 10);
  assert.ok(calls <= 40 && calls > 10, `ddpm made ${calls} calls for 10 windows of 4 steps`);
  assert.equal(decodeMany(firstHittingStep, 4, shapings[0]!, 10).calls, 10 * W);
});

test('confidence top-k at temperature 0 decodes the arg max everywhere in exactly `steps` calls', () => {
  const { counts, calls } = decodeMany(confidenceTopkStep, 4, { temperature: 0, topK: 0, topP: 1 }, 10);
  assert.equal(counts[0], 10 * W); // token 0 has the largest non-mask logit
  assert.equal(calls, 10 * 4);
});

test('confidence threshold: unmasks everything above the threshold, at least one per call', () => {
  // p(token 0) = 0.43 at T=1: a 0.99 threshold unmasks one per call, a 0.01 threshold all at once.
  assert.equal(decodeMany((x) => confidenceThresholdStep(x, 0.99), 1, shapings[0]!, 5).calls, 5 * W);
  assert.equal(decodeMany((x) => confidenceThresholdStep(x, 0.01), 1, shapings[0]!, 5).calls, 5);
});

test('categorical sampling: inverse CDF hits each bin with its probability', () => {
  const p = new Float64Array([0.1, 0, 0.6, 0.3]);
  const counts = [0, 0, 0, 0];
  const rng = new Rng(3);
  for (let i = 0; i < 6000; i++) counts[sample(p, rng.next())]!++;
  const { stat, df } = chiSquare(counts, [...p]);
  assert.ok(stat < CHI2_999[df]!, `chi-square ${stat}`);
  const d = distribution(new Float32Array([0, 5, 1]), 0, 3, { temperature: 0, topK: 0, topP: 1 }, 1);
  assert.deepEqual([...d], [0, 0, 1], 'greedy skips the banned id');
});

test('the same seed gives the same draws; another seed differs', () => {
  const a = decodeMany(ddpmStep, 8, shapings[0]!, 20, 11).counts;
  const b = decodeMany(ddpmStep, 8, shapings[0]!, 20, 11).counts;
  const c = decodeMany(ddpmStep, 8, shapings[0]!, 20, 12).counts;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});
