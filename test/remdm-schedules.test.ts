import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confidenceWeights, remdmPosterior, remdmStep } from '../engine/samplers/remdm.js';
import { loopAlpha, remdmPlan, resolveRemasking, sigmaMax, REMASKING_SCHEDULES } from '../engine/samplers/remdm-schedule.js';
import { x0Distribution } from '../engine/samplers/duo-posterior.js';
import { rngOf } from './helpers/seeded-rng.js';

const MASK = 4;
const V = 5;

/** Masked forward process q(z | x) at level alpha, as a vector over V (mask id included). */
function forward(x: number, alpha: number): number[] {
  const v = new Array<number>(V).fill(0);
  v[x]! += alpha;
  v[MASK]! += 1 - alpha;
  return v;
}

test('ReMDM posterior is a distribution for every sigma in [0, sigmaMax]', () => {
  const p = Float64Array.from([0.1, 0.5, 0.3, 0.1, 0]);
  for (const [aS, aT] of [[0.5, 0.2], [0.9, 0.85], [1, 0.3], [0.2, 0.001]] as const) {
    const bound = sigmaMax(aS, aT);
    for (const f of [0, 0.25, 0.5, 1]) {
      for (const zt of [0, 2, MASK]) {
        const q = remdmPosterior(p, zt, MASK, aS, aT, f * bound);
        assert.ok(Math.abs(q.reduce((a, b) => a + b, 0) - 1) < 1e-12);
        for (const x of q) assert.ok(x >= -1e-15, `negative mass ${x} at as=${aS} at=${aT}`);
      }
    }
  }
});

test('sigma = 0 is exactly the MDLM ancestral posterior', () => {
  const p = Float64Array.from([0.2, 0.2, 0.5, 0.1, 0]);
  const [aS, aT] = [0.6, 0.35];
  const q = remdmPosterior(p, MASK, MASK, aS, aT, 0);
  for (let j = 0; j < MASK; j++) assert.ok(Math.abs(q[j]! - (p[j]! * (aS - aT)) / (1 - aT)) < 1e-15);
  assert.ok(Math.abs(q[MASK]! - (1 - aS) / (1 - aT)) < 1e-15);
  assert.deepEqual(Array.from(remdmPosterior(p, 1, MASK, aS, aT, 0)), [0, 1, 0, 0, 0]);
});

test('remasking keeps the forward marginals: sum_zt q(zt|x) q_sigma(zs|zt,x) = q(zs|x) (enumeration)', () => {
  for (const [aS, aT] of [[0.5, 0.2], [0.95, 0.9], [1, 0.4]] as const) {
    for (let x = 0; x < MASK; x++) {
      const point = new Float64Array(V);
      point[x] = 1;
      for (const f of [0, 0.3, 1]) {
        const sigma = f * sigmaMax(aS, aT);
        const marg = new Array<number>(V).fill(0);
        const qt = forward(x, aT);
        for (let zt = 0; zt < V; zt++) {
          if (qt[zt] === 0) continue;
          const q = remdmPosterior(point, zt, MASK, aS, aT, sigma);
          for (let zs = 0; zs < V; zs++) marg[zs]! += qt[zt]! * q[zs]!;
        }
        const want = forward(x, aS);
        for (let zs = 0; zs < V; zs++) assert.ok(Math.abs(marg[zs]! - want[zs]!) < 1e-12, `x=${x} sigma=${sigma} zs=${zs}`);
      }
    }
  }
});

test('schedules: cap, rescale and loop follow their definitions; the last step has no remasking', () => {
  const steps = 16;
  const eps = 1e-3;
  const cap = resolveRemasking({ schedule: 'cap', eta: 0.05 });
  const rescale = resolveRemasking({ schedule: 'rescale', eta: 0.5 });
  for (let k = 0; k < steps; k++) {
    const pc = remdmPlan(k, steps, eps, cap);
    const pr = remdmPlan(k, steps, eps, rescale);
    assert.equal(pc.sigma, Math.min(0.05, sigmaMax(pc.alphaS, pc.alphaT)));
    assert.ok(Math.abs(pr.sigma - 0.5 * Math.min(1, (1 - pr.alphaS) / pr.alphaT)) < 1e-15);
    assert.ok(pc.alphaS > pc.alphaT);
  }
  for (const schedule of REMASKING_SCHEDULES) {
    const last = remdmPlan(steps - 1, steps, eps, resolveRemasking({ schedule }));
    assert.equal(last.alphaS, 1, schedule);
    assert.equal(last.sigmaMax, 0, schedule);
    assert.equal(last.sigma, 0, schedule);
  }
  const loop = resolveRemasking({ schedule: 'loop', eta: 0.02, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 });
  assert.equal(loopAlpha(1, loop), 0);
  assert.ok(Math.abs(loopAlpha(0.55, loop) - 0.9) < 1e-12);
  assert.equal(loopAlpha(0.3, loop), 0.9);
  assert.ok(Math.abs(loopAlpha(0.05, loop) - 0.9) < 1e-12);
  assert.equal(loopAlpha(0, loop), 1);
  let remaskSteps = 0;
  for (let k = 0; k < 20; k++) {
    const pl = remdmPlan(k, 20, eps, loop);
    const t = 1 - k / 20;
    if (t > 0.05 && t <= 0.55) {
      assert.equal(pl.sigma, Math.min(0.02, pl.sigmaMax));
      if (pl.sigma > 0) remaskSteps++;
    } else assert.equal(pl.sigma, 0);
  }
  // t = 0.55 .. 0.10 remask; the step from t = 0.05 lands on alpha = 1, where nothing may remask.
  assert.equal(remaskSteps, 10);
});

test('bad remasking settings name the field', () => {
  const field = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof RangeError);
      return e.message.split(':')[0]!;
    }
    assert.fail('expected a RangeError');
  };
  assert.equal(field(() => resolveRemasking({ schedule: 'cap', eta: 1.5 })), 'remasking.eta');
  assert.equal(field(() => resolveRemasking({ schedule: 'loop', tOn: 0.1, tOff: 0.2 })), 'remasking.tOff');
  assert.equal(field(() => resolveRemasking({ schedule: 'loop', alphaOn: 1 })), 'remasking.alphaOn');
  assert.equal(field(() => resolveRemasking({ schedule: 'bogus' as 'cap', eta: 0.1 })), 'remasking.schedule');
  assert.deepEqual(resolveRemasking({ schedule: 'cap' }), { schedule: 'cap', eta: 0.008, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 });
});

test('confidence weights: softmax over decoded positions, zero on masked ones', () => {
  const w = confidenceWeights(Float64Array.from([-0.9, -Infinity, -0.1]));
  assert.equal(w[1], 0);
  assert.ok(Math.abs(w[0]! + w[2]! - 1) < 1e-15);
  assert.ok(Math.abs(w[2]! / w[0]! - Math.exp(0.8)) < 1e-12, 'less confident tokens are remasked more');
  assert.deepEqual(Array.from(confidenceWeights(Float64Array.from([-Infinity, -Infinity]))), [0, 0]);
});

function logitsFor(L: number): Float32Array {
  const rng = rngOf(5);
  const l = new Float32Array(L * V);
  for (let i = 0; i < l.length; i++) l[i] = 3 * rng();
  return l;
}

test('a ReMDM step samples each position from its posterior (empirical frequencies)', () => {
  const logits = logitsFor(3);
  const start = Int32Array.from([MASK, 2, MASK]);
  const r = resolveRemasking({ schedule: 'rescale', eta: 0.9 });
  const plan = remdmPlan(5, 10, 1e-3, r);
  assert.ok(plan.sigma > 0.1);
  const x0 = { temperature: 1, topP: 1, topK: 0 };
  const counts = start.length === 3 ? [0, 1, 2].map(() => new Array<number>(V).fill(0)) : [];
  const rng = rngOf(9);
  const n = 30000;
  for (let k = 0; k < n; k++) {
    const canvas = start.slice();
    remdmStep({ plan, eta: r.eta, logits, canvasStart: 0, V, maskId: MASK, canvas, conf: new Float64Array(3).fill(-Infinity), x0, rng });
    for (let i = 0; i < 3; i++) counts[i]![canvas[i]!]!++;
  }
  for (let i = 0; i < 3; i++) {
    const p = x0Distribution(logits, i * V, V, x0, undefined, MASK);
    const want = remdmPosterior(p, start[i]!, MASK, plan.alphaS, plan.alphaT, plan.sigma);
    for (let j = 0; j < V; j++) {
      const sd = Math.sqrt((want[j]! * (1 - want[j]!)) / n);
      assert.ok(Math.abs(counts[i]![j]! / n - want[j]!) < 5 * sd + 1e-4, `pos ${i} tok ${j}: ${counts[i]![j]! / n} vs ${want[j]}`);
    }
  }
});

test('a full ReMDM run after a prompt ends with no mask, remasks, and is reproducible', () => {
  const prompt = 3;
  const L = 10;
  const logits = logitsFor(prompt + L);
  for (const schedule of REMASKING_SCHEDULES) {
    const r = resolveRemasking({ schedule, eta: schedule === 'conf' ? 1 : 0.3 });
    const run = (seed: number): { canvas: number[]; remasked: number } => {
      const rng = rngOf(seed);
      const canvas = new Int32Array(L).fill(MASK);
      const conf = new Float64Array(L).fill(-Infinity);
      let remasked = 0;
      for (let k = 0; k < 12; k++) {
        const before = canvas.slice();
        remdmStep({ plan: remdmPlan(k, 12, 1e-3, r), eta: r.eta, logits, canvasStart: prompt, V, maskId: MASK, canvas, conf, x0: { temperature: 1, topP: 0.9, topK: 0 }, rng });
        for (let i = 0; i < L; i++) if (before[i] !== MASK && canvas[i] === MASK) remasked++;
        for (let i = 0; i < L; i++) assert.equal(conf[i] === -Infinity, canvas[i] === MASK, 'conf tracks decoded positions');
      }
      return { canvas: Array.from(canvas), remasked };
    };
    const a = run(1);
    assert.ok(!a.canvas.includes(MASK), `${schedule}: no mask left`);
    assert.deepEqual(run(1), a, `${schedule}: same seed, same output`);
    let anyRemask = 0;
    for (let s = 1; s <= 20; s++) anyRemask += run(s).remasked;
    assert.ok(anyRemask > 0, `${schedule}: remasking happens`);
  }
});
