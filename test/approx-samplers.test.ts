// Adaptive parallel decoding rules (engine/samplers/adaptive.ts): hand-computed cases for the
// EB-sampler's entropy bound and Fast-dLLM's factor rule, and seeded properties: gamma 0 commits
// one token per call, a huge gamma all of them, both rules are monotone in their knob and the
// factor rule in the confidences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../engine/rng.js';
import {
  entropyBoundedCount, entropyBoundedStep, entropyOf, factorCount, factorStep, propose, selectEntropyBounded,
  selectFactor, selectThreshold, type Proposal,
} from '../engine/samplers/adaptive.js';
import type { MaskedStep } from '../engine/samplers/masked.js';
import { rngOf } from './helpers/seeded-rng.js';

const GREEDY = { temperature: 0, topK: 0, topP: 1 };
const MASK = 99; // outside the 3-token vocabulary of the hand cases

function logitsOf(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat().map(Math.log));
}

const HAND = [[1 / 3, 1 / 3, 1 / 3], [0.9, 0.1, 0], [0.99, 0.01, 0], [0.5, 0.5, 0]];
// Entropies in nats: ln 3, 0.3251, 0.0560, ln 2.
const H = [Math.log(3), -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1)), -(0.99 * Math.log(0.99) + 0.01 * Math.log(0.01)), Math.log(2)];

function handStep(): MaskedStep {
  return { canvas: new Int32Array(4).fill(MASK), maskId: MASK, logits: logitsOf(HAND), V: 3, shaping: GREEDY, rng: new Rng(1), step: 0, steps: 4, eps: 1e-3 };
}

test('proposals score the unshaped distribution at temperature 0', () => {
  const props = propose(logitsOf(HAND), 3, [0, 1, 2, 3], GREEDY, MASK, new Rng(0));
  assert.deepEqual(props.map((p) => p.tok), [0, 0, 0, 0]);
  props.forEach((p, i) => {
    assert.ok(Math.abs(p.entropy - H[i]!) < 1e-6, `entropy ${i}: ${p.entropy} vs ${H[i]}`);
    assert.ok(Math.abs(p.conf - HAND[i]![0]!) < 1e-6, `conf ${i}`);
  });
  assert.ok(Math.abs(entropyOf(Float64Array.from([0.5, 0.5])) - Math.log(2)) < 1e-12);
});

test('EB-sampler: hand-computed bounds (sorted entropies 0.056, 0.325, 0.693, 1.099)', () => {
  // k is kept while the entropies before the k-th sum to <= gamma: S1 = 0.056, S2 = 0.381, S3 = 1.074.
  const cases: [number, number[]][] = [[0.05, [2]], [0.3, [2, 1]], [0.4, [2, 1, 3]], [1.0, [2, 1, 3]], [1.1, [2, 1, 3, 0]]];
  for (const [gamma, want] of cases) {
    const x = handStep();
    assert.equal(entropyBoundedStep(x, gamma), want.length, `gamma ${gamma}`);
    const got = [...x.canvas.keys()].filter((j) => x.canvas[j] !== MASK);
    assert.deepEqual(got, [...want].sort(), `gamma ${gamma}: unmasked positions`);
  }
  assert.equal(entropyBoundedCount([], 1), 0);
  assert.equal(entropyBoundedCount([2, 3], 0), 1);
  assert.equal(entropyBoundedCount([0, 0, 0.5], 0), 3); // certain tokens cost nothing
});

test("Fast-dLLM factor rule: hand-computed n (largest with (n+1)(1-c_n) < f)", () => {
  assert.equal(factorCount([0.99, 0.95, 0.7], 1), 2); // 3 * 0.05 = 0.15 < 1; 4 * 0.3 = 1.2
  assert.equal(factorCount([0.9, 0.9, 0.9, 0.9], 1), 4); // 5 * 0.1 = 0.5
  assert.equal(factorCount([0.75, 0.75, 0.75, 0.75], 1), 2); // 3 * 0.25 = 0.75 < 1; 4 * 0.25 = 1 is not < 1
  assert.equal(factorCount([0.75, 0.75, 0.75, 0.75], 1.01), 3);
  assert.equal(factorCount([0.3, 0.2], 1), 1); // at least one
  const x = handStep();
  // Confidences 0.99, 0.9, 0.5, 0.333: 3 * 0.1 = 0.3 < 1, 4 * 0.5 = 2 -> the two most confident.
  assert.equal(factorStep(x, 1), 2);
  assert.deepEqual([...x.canvas], [MASK, 0, 0, MASK]);
  assert.deepEqual(selectThreshold(propose(logitsOf(HAND), 3, [0, 1, 2, 3], GREEDY, MASK, new Rng(0)), 0.95).map((p) => p.pos), [2]);
  assert.deepEqual(selectThreshold(propose(logitsOf(HAND), 3, [0, 3], GREEDY, MASK, new Rng(0)), 0.95).map((p) => p.pos), [3]);
});

function randomProposals(u: () => number, n: number, V: number): Proposal[] {
  const rows: number[] = [];
  for (let i = 0; i < n * V; i++) rows.push((u() - 0.5) * 2 * (1 + 6 * u()));
  const logits = Float32Array.from(rows);
  return propose(logits, V, Array.from({ length: n }, (_, i) => i), { temperature: 1, topK: 0, topP: 1 }, null, new Rng(Math.floor(u() * 1e9)));
}

test('seeded properties: gamma 0 -> one, huge gamma -> all, monotone in gamma and factor', () => {
  const u = rngOf(15);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(u() * 30);
    const props = randomProposals(u, n, 2 + Math.floor(u() * 20));
    assert.ok(props.every((p) => p.entropy > 0));
    assert.equal(selectEntropyBounded(props, 0).length, 1);
    assert.equal(selectEntropyBounded(props, 1e9).length, n);
    let last = 0;
    for (const g of [0, 0.01, 0.1, 0.5, 1, 2, 5, 50]) {
      const k = selectEntropyBounded(props, g).length;
      assert.ok(k >= last, `EB count fell from ${last} to ${k} at gamma ${g}`);
      last = k;
    }
    last = 0;
    for (const f of [0, 0.5, 1, 2, 4, 100]) {
      const k = selectFactor(props, f).length;
      assert.ok(k >= last && k >= 1, `factor count fell at f ${f}`);
      last = k;
    }
    // The factor rule keeps the most confident: nothing left out beats anything kept.
    const kept = selectFactor(props, 1);
    const minKept = Math.min(...kept.map((p) => p.conf));
    assert.ok(props.filter((p) => !kept.includes(p)).every((p) => p.conf <= minKept));
    // Raising confidences never keeps fewer.
    const raised = props.map((p) => (u() < 0.5 ? { ...p, conf: p.conf + (1 - p.conf) * u() } : p));
    assert.ok(selectFactor(raised, 1).length >= kept.length);
  }
});

test('gamma 0 decodes a window one token per call; a huge gamma in one call', () => {
  const u = rngOf(7);
  const W = 12;
  const V = 8;
  for (const [gamma, calls] of [[0, W], [1e9, 1]] as const) {
    const canvas = new Int32Array(W).fill(MASK);
    const rng = new Rng(3);
    let n = 0;
    while (canvas.includes(MASK)) {
      const logits = Float32Array.from({ length: W * V }, () => (u() - 0.5) * 6);
      entropyBoundedStep({ canvas, maskId: MASK, logits, V, shaping: { temperature: 1, topK: 0, topP: 1 }, rng, step: n, steps: W, eps: 1e-3 }, gamma);
      n++;
    }
    assert.equal(n, calls, `gamma ${gamma}`);
  }
});
