// confidenceTopkStep draws only the positions whose probability bound can still reach the k
// kept ones; it must leave the canvas and the RNG exactly as drawing every masked position in
// order, sorting and keeping k does (the definition, written out below), on rows like a real
// model's and on the edges: equal rows (ties broken by position), flat rows, rows where one
// position is certain, NaN and infinite logits, greedy and top-k / top-p shapings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { draw, drawn, probBound, type Shaping } from '../engine/samplers/categorical.js';
import { confidenceTopkStep, type MaskedStep } from '../engine/samplers/masked.js';
import { Rng } from '../engine/rng.js';

const V = 4096;
const MASK = 3;

function reference(x: MaskedStep): number {
  const props: { pos: number; tok: number; conf: number }[] = [];
  for (let j = 0; j < x.canvas.length; j++) {
    if (x.canvas[j] !== x.maskId) continue;
    const tok = draw(x.logits, j * x.V, x.V, x.shaping, x.maskId, x.rng.next());
    props.push({ pos: j, tok, conf: drawn.prob });
  }
  if (props.length === 0) return 0;
  const k = Math.min(props.length, Math.ceil(props.length / Math.max(1, x.steps - x.step)));
  props.sort((a, b) => b.conf - a.conf || a.pos - b.pos);
  for (let i = 0; i < k; i++) x.canvas[props[i]!.pos] = props[i]!.tok;
  return k;
}

/** One position's logits: kind 0 peaked at a random height over a flat tail, 1 flat, 2 certain, 3 many ties. */
function fillRow(out: Float32Array, off: number, rng: Rng, kind: number): void {
  const peak = rng.next() * 12;
  const head = 1 + rng.int(30);
  for (let v = 0; v < V; v++) {
    const u = rng.next();
    out[off + v] = kind === 0 ? (u - 0.5) * 6 + (v % 97 < head ? peak : 0)
      : kind === 1 ? (u - 0.5) * 0.5
        : kind === 2 ? (u - 0.5) * 4 + (v === 17 ? 40 : 0)
          : Math.round(u * 3);
  }
  out[off + MASK] = 30; // the banned id, as a real model's [MASK] logit may be anything
}

const SHAPINGS: Shaping[] = [
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.7, topK: 0, topP: 1 },
  { temperature: 1.6, topK: 0, topP: 1 },
  { temperature: 0, topK: 0, topP: 1 },
  { temperature: 1, topK: 40, topP: 1 },
  { temperature: 0.9, topK: 0, topP: 0.8 },
];

function canvasOf(rng: Rng, L: number, maskedShare: number): Int32Array {
  return Int32Array.from({ length: L }, () => (rng.next() < maskedShare ? MASK : 100 + rng.int(3000)));
}

test('confidence top-k keeps the same tokens at the same positions and leaves the RNG where drawing every position does', () => {
  const gen = new Rng(5);
  let cases = 0;
  for (let trial = 0; trial < 120; trial++) {
    const L = 1 + gen.int(48);
    const logits = new Float32Array(L * V);
    const mode = trial % 6;
    for (let j = 0; j < L; j++) {
      // mode 4: every row the same (all confidences tie unless the uniforms differ); 5: edges
      if (mode === 4 && j > 0) logits.copyWithin(j * V, 0, V);
      else fillRow(logits, j * V, gen, mode < 4 ? mode : gen.int(4));
    }
    if (mode === 5) {
      const j = gen.int(L);
      const edge = trial % 4;
      if (edge === 0) logits[j * V + 9] = NaN;
      else if (edge === 1) logits[j * V + 9] = Infinity;
      else if (edge === 2) logits.fill(-Infinity, j * V, (j + 1) * V);
      else logits.fill(0, j * V, (j + 1) * V); // uniform
    }
    const canvas = canvasOf(gen, L, 0.3 + 0.7 * gen.next());
    const steps = 1 + gen.int(16);
    const step = gen.int(steps);
    for (const shaping of SHAPINGS) {
      const seed = trial * 31 + cases;
      const a: MaskedStep = { canvas: canvas.slice(), maskId: MASK, logits, V, shaping, rng: new Rng(seed), step, steps, eps: 1e-3 };
      const b: MaskedStep = { ...a, canvas: canvas.slice(), rng: new Rng(seed) };
      assert.equal(confidenceTopkStep(a), reference(b), `trial ${trial}`);
      assert.deepEqual(a.canvas, b.canvas, `trial ${trial}, temperature ${shaping.temperature}`);
      assert.equal(a.rng.next(), b.rng.next(), `trial ${trial}: RNG consumed differently`);
      cases++;
    }
  }
  assert.equal(cases, 120 * SHAPINGS.length);
});

test('probBound is above every probability draw returns for its row', () => {
  const gen = new Rng(8);
  const row = new Float32Array(V);
  let finite = 0;
  for (let t = 0; t < 200; t++) {
    fillRow(row, 0, gen, t % 4);
    for (const shaping of SHAPINGS) {
      const bound = probBound(row, 0, V, shaping, MASK);
      if (bound < Infinity) finite++;
      for (const u of [0, 0.3, 0.999, gen.next()]) {
        draw(row, 0, V, shaping, MASK, u);
        assert.ok(drawn.prob <= bound, `row ${t}: prob ${drawn.prob} above its bound ${bound}`);
      }
    }
  }
  // The bound must also be useful: finite wherever draw divides weights by their sum.
  assert.equal(finite, 200 * 3);
  // A certain row's bound is near 1, a flat row's near 1 / V.
  fillRow(row, 0, gen, 2);
  assert.ok(probBound(row, 0, V, SHAPINGS[0]!, MASK) < 1.01);
  fillRow(row, 0, gen, 1);
  assert.ok(probBound(row, 0, V, SHAPINGS[0]!, MASK) < 2 / V);
});
