import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duoDraw, duoPosterior, duoTimeGrid, logLinearAlpha, sampleCategorical, x0Distribution } from '../engine/samplers/duo-posterior.js';
import { duoPlan, duoPrior, duoStep } from '../engine/samplers/duo.js';
import { rngOf } from './helpers/seeded-rng.js';

function randomDist(V: number, rng: () => number): Float64Array {
  const p = new Float64Array(V);
  let s = 0;
  for (let j = 0; j < V; j++) s += p[j] = rng() ** 3 + 1e-3;
  return p.map((x) => x / s);
}

/** The uniform forward kernel from alpha_a to alpha_b (b noisier): K[i][j] = q(x_b = j | x_a = i). */
function kernel(V: number, alpha: number): number[][] {
  return Array.from({ length: V }, (_, i) => Array.from({ length: V }, (_, j) => alpha * (i === j ? 1 : 0) + (1 - alpha) / V));
}

/** Bayes by enumeration: p(x_s | x_t) proportional to sum_x0 p(x0) q(x_s | x0) q(x_t | x_s). */
function bruteForcePosterior(p: Float64Array, xt: number, alphaS: number, alphaT: number): number[] {
  const V = p.length;
  const Ks = kernel(V, alphaS);
  const Kts = kernel(V, alphaT / alphaS);
  const joint = Array.from({ length: V }, (_, xs) => {
    let m = 0;
    for (let x0 = 0; x0 < V; x0++) m += p[x0]! * Ks[x0]![xs]! * Kts[xs]![xt]!;
    return m;
  });
  const z = joint.reduce((a, b) => a + b, 0);
  return joint.map((v) => v / z);
}

test('Duo posterior sums to one and equals Bayes by brute-force enumeration', () => {
  const rng = rngOf(1);
  for (const V of [2, 3, 5, 7]) {
    for (const [alphaS, alphaT] of [
      [0.9, 0.5],
      [0.3, 0.001],
      [1, 0.2],
      [1, 0.999],
      [0.6, 0.6],
    ] as const) {
      for (let trial = 0; trial < 4; trial++) {
        const p = randomDist(V, rng);
        const xt = trial % V;
        const q = duoPosterior(p, xt, alphaS, alphaT);
        const ref = bruteForcePosterior(p, xt, alphaS, alphaT);
        assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-12, 'sums to one');
        for (let j = 0; j < V; j++) {
          assert.ok(q[j]! >= 0);
          assert.ok(Math.abs(q[j]! - ref[j]!) < 1e-12, `V=${V} as=${alphaS} at=${alphaT} j=${j}: ${q[j]} vs ${ref[j]}`);
        }
      }
    }
  }
});

test('Duo posterior keeps mass on a 50k vocabulary in float64 (uniform floor is not lost)', () => {
  const V = 50257;
  const p = new Float64Array(V).fill(1e-9);
  p[7] = 1 - 1e-9 * (V - 1);
  const q = duoPosterior(p, 3, 0.5, 0.4);
  assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.ok(q[100]! > 0);
  assert.ok(q[7]! > q[100]!);
});

test('the noise-removal step (alpha_s = 1) with a point-mass prediction returns that token', () => {
  const V = 6;
  const p = new Float64Array(V);
  p[4] = 1;
  for (let xt = 0; xt < V; xt++) {
    const q = duoPosterior(p, xt, 1, 0.3);
    assert.ok(Math.abs(q[4]! - 1) < 1e-12);
  }
});

test('x0 distribution: temperature, top-k, nucleus and an excluded id', () => {
  const logits = Float32Array.from([0, 2, 1, -1, 3]);
  const full = x0Distribution(logits, 0, 5, { temperature: 1, topP: 1, topK: 0 });
  const z = [0, 2, 1, -1, 3].map(Math.exp).reduce((a, b) => a + b, 0);
  for (let j = 0; j < 5; j++) assert.ok(Math.abs(full[j]! - Math.exp(logits[j]!) / z) < 1e-12);

  const greedy = x0Distribution(logits, 0, 5, { temperature: 0, topP: 1, topK: 0 });
  assert.deepEqual(Array.from(greedy), [0, 0, 0, 0, 1]);

  const k2 = x0Distribution(logits, 0, 5, { temperature: 1, topP: 1, topK: 2 });
  assert.equal(k2.filter((x) => x > 0).length, 2);
  assert.ok(k2[4]! > 0 && k2[1]! > 0);
  assert.ok(Math.abs(k2[4]! - Math.exp(3) / (Math.exp(3) + Math.exp(2))) < 1e-12);

  // Nucleus: the smallest set of most likely tokens whose mass reaches top_p.
  const pTop = Math.exp(3) / z;
  const pTwo = (Math.exp(3) + Math.exp(2)) / z;
  const nOne = x0Distribution(logits, 0, 5, { temperature: 1, topP: pTop - 1e-6, topK: 0 });
  assert.deepEqual(Array.from(nOne), [0, 0, 0, 0, 1]);
  const nTwo = x0Distribution(logits, 0, 5, { temperature: 1, topP: pTop + 1e-6, topK: 0 });
  assert.equal(nTwo.filter((x) => x > 0).length, 2);
  const nThree = x0Distribution(logits, 0, 5, { temperature: 1, topP: pTwo + 1e-6, topK: 0 });
  assert.equal(nThree.filter((x) => x > 0).length, 3);
  assert.ok(Math.abs(nThree.reduce((a, b) => a + b, 0) - 1) < 1e-12);

  const noMask = x0Distribution(logits, 0, 5, { temperature: 1, topP: 1, topK: 0 }, undefined, 4);
  assert.equal(noMask[4], 0);
  assert.ok(Math.abs(noMask.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  const noMaskGreedy = x0Distribution(logits, 0, 5, { temperature: 0, topP: 1, topK: 0 }, undefined, 4);
  assert.equal(noMaskGreedy[1], 1);
});

test('nucleus on a large flat-tailed vocabulary keeps exactly the top tokens', () => {
  const V = 8192;
  const logits = new Float32Array(V);
  for (let j = 0; j < V; j++) logits[j] = -((j * 7919) % V) / 500;
  const p = x0Distribution(logits, 0, V, { temperature: 1, topP: 0.9, topK: 0 });
  const full = x0Distribution(logits, 0, V, { temperature: 1, topP: 1, topK: 0 });
  const order = Array.from(full.keys()).sort((a, b) => full[b]! - full[a]!);
  let mass = 0;
  let n = 0;
  while (mass < 0.9) mass += full[order[n++]!]!;
  assert.equal(p.filter((x) => x > 0).length, n);
  for (let r = 0; r < n; r++) assert.ok(p[order[r]!]! > 0);
});

test('time grid and plans: N steps are N calls, the last one removes the noise', () => {
  assert.deepEqual(duoTimeGrid(1), [1]);
  const g = duoTimeGrid(8);
  assert.equal(g.length, 8);
  assert.equal(g[0], 1);
  assert.ok(Math.abs(g[7]! - 1e-5) < 1e-15);
  for (let k = 0; k < 8; k++) {
    const plan = duoPlan(k, 8, 1e-3);
    assert.equal(plan.final, k === 7);
    assert.ok(plan.alphaS >= plan.alphaT);
    assert.ok(Math.abs(plan.sigma + Math.log(logLinearAlpha(g[k]!, 1e-3))) < 1e-12);
    if (k === 7) assert.equal(plan.alphaS, 1);
  }
  assert.throws(() => duoPlan(8, 8, 1e-3), RangeError);
  assert.throws(() => duoTimeGrid(0), RangeError);
});

test('inverse-CDF draws follow the distribution', () => {
  const p = [0.1, 0, 0.6, 0.3];
  assert.equal(sampleCategorical(p, 0), 0);
  assert.equal(sampleCategorical(p, 0.0999), 0);
  assert.equal(sampleCategorical(p, 0.1), 2);
  assert.equal(sampleCategorical(p, 0.69), 2);
  assert.equal(sampleCategorical(p, 0.71), 3);
  assert.equal(sampleCategorical(p, 0.99999999999), 3);
});

test('a Duo step samples each position from its posterior (empirical frequencies)', () => {
  const V = 4;
  const rows = [Float32Array.from([1, 0, -1, 0.5]), Float32Array.from([-2, 0.3, 2, 0])];
  const logits = Float32Array.from([...rows[0]!, ...rows[1]!]);
  const start = Int32Array.from([3, 0]);
  const plan = duoPlan(2, 6, 1e-3);
  const x0 = { temperature: 1, topP: 1, topK: 0 };
  const expected = [0, 1].map((i) => duoPosterior(x0Distribution(logits, i * V, V, x0), start[i]!, plan.alphaS, plan.alphaT));
  const counts = [new Array<number>(V).fill(0), new Array<number>(V).fill(0)];
  const rng = rngOf(7);
  const n = 40000;
  for (let r = 0; r < n; r++) {
    const canvas = start.slice();
    duoStep({ sampler: 'duo', plan, logits, canvasStart: 0, V, canvas, x0, rng });
    counts[0]![canvas[0]!]!++;
    counts[1]![canvas[1]!]!++;
  }
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < V; j++) {
      const pj = expected[i]![j]!;
      const sd = Math.sqrt((pj * (1 - pj)) / n);
      assert.ok(Math.abs(counts[i]![j]! / n - pj) < 5 * sd + 1e-4, `pos ${i} tok ${j}: ${counts[i]![j]! / n} vs ${pj}`);
    }
  }
});

test('few-step Duo (8 steps) on a confident denoiser lands on its tokens; same seed, same path', () => {
  const V = 50;
  const L = 12;
  const target = Array.from({ length: L }, (_, i) => (i * 17 + 3) % V);
  const logits = new Float32Array(L * V).fill(-4);
  for (let i = 0; i < L; i++) logits[i * V + target[i]!] = 6;
  const run = (seed: number, sampler: 'duo' | 'duo_greedy'): number[][] => {
    const rng = rngOf(seed);
    const canvas = duoPrior(L, V, rng);
    const path = [Array.from(canvas)];
    for (let k = 0; k < 8; k++) {
      duoStep({ sampler, plan: duoPlan(k, 8, 1e-3), logits, canvasStart: 0, V, canvas, x0: { temperature: 1, topP: 0.95, topK: 0 }, rng });
      path.push(Array.from(canvas));
    }
    return path;
  };
  for (const sampler of ['duo', 'duo_greedy'] as const) {
    const a = run(11, sampler);
    assert.deepEqual(a.at(-1), target, sampler);
    assert.deepEqual(run(11, sampler), a, 'same seed gives the same path');
    assert.notDeepEqual(run(12, sampler).slice(0, 4), a.slice(0, 4), 'another seed gives another path');
  }
});

test('the greedy tail takes the arg-max of the raw logits, ignoring the sampling settings', () => {
  const V = 5;
  const logits = Float32Array.from([0, 1, 4, 3, 2, 5, 0, 0, 0, 1]);
  const canvas = Int32Array.from([1, 1]);
  duoStep({ sampler: 'duo_greedy', plan: duoPlan(3, 4, 1e-3), logits, canvasStart: 0, V, canvas, x0: { temperature: 2, topP: 1, topK: 0 }, rng: rngOf(1) });
  assert.deepEqual(Array.from(canvas), [2, 0]);
});

test('the Duo prior is uniform over the vocabulary', () => {
  const V = 10;
  const counts = new Array<number>(V).fill(0);
  const c = duoPrior(20000, V, rngOf(3));
  for (const x of c) counts[x]!++;
  for (const k of counts) assert.ok(Math.abs(k / 20000 - 0.1) < 0.012);
});

test('a posterior draw (duoDraw, the mixture form) has exactly duoPosterior\'s distribution', () => {
  const rng = rngOf(5);
  const V = 7;
  const N = 200_000;
  for (const [alphaS, alphaT] of [[0.6, 0.3], [1, 0.2], [0.999, 0.998], [0.05, 0.001]] as const) {
    for (let trial = 0; trial < 3; trial++) {
      const p = randomDist(V, rng);
      const xt = Math.floor(rng() * V);
      const want = duoPosterior(p, xt, alphaS, alphaT);
      // u on a fine even grid: each token's share of the grid is its probability, to 1/N.
      const got = new Array<number>(V).fill(0);
      for (let i = 0; i < N; i++) got[duoDraw(p, xt, alphaS, alphaT, (i + 0.5) / N)]!++;
      for (let j = 0; j < V; j++) assert.ok(Math.abs(got[j]! / N - want[j]!) <= 3 / N, `alpha ${alphaS}/${alphaT} token ${j}: ${got[j]! / N} vs ${want[j]}`);
    }
  }
});

test('nucleus and top-k cut equal a full sort (ties by id) on random, flat and tied distributions', () => {
  const rng = rngOf(11);
  for (let trial = 0; trial < 300; trial++) {
    const V = 1 + Math.floor(rng() * 300);
    const kind = trial % 3;
    // Random logits; flat ones; or few distinct values (many ties at the cut).
    const logits = Float32Array.from({ length: V }, () => (kind === 0 ? rng() * 8 : kind === 1 ? rng() * 0.01 : Math.floor(rng() * 4)));
    const topP = [0.1, 0.5, 0.9, 0.95, 0.999, 1][trial % 6]!;
    const topK = [0, 1, 2, 5, 50, V][Math.floor(rng() * 6)]!;
    const full = x0Distribution(logits, 0, V, { temperature: 1, topP: 1, topK: 0 });
    const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => full[b]! - full[a]! || a - b);
    const k = topK > 0 && topK < V ? topK : V;
    let kept = 0;
    let mass = 0;
    while (kept < k && (kept === 0 || mass < topP)) mass += full[order[kept++]!]!;
    const want = new Float64Array(V);
    for (const j of order.slice(0, kept)) want[j] = full[j]! / mass;
    const got = x0Distribution(logits, 0, V, { temperature: 1, topP, topK });
    for (let j = 0; j < V; j++) {
      assert.equal(got[j] === 0, want[j] === 0, `trial ${trial} (V ${V}, top_p ${topP}, top_k ${topK}): token ${j} kept differs`);
      assert.ok(Math.abs(got[j]! - want[j]!) < 1e-12);
    }
  }
});
