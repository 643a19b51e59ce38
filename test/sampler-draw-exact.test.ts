// draw() replaces distribution() + sample() in the masked samplers' inner loops; it must give the
// same token and the same probability, bit for bit, for every shaping and uniform, or decoding
// at a fixed seed would change. Checked on rows shaped like a real model's (a few large logits
// over a flat tail, V 4096, [MASK] banned) and on the edges: u near 0 and 1, ties, a banned
// arg max, a row whose weights underflow, greedy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { draw, drawn, distribution, sample, type Shaping } from '../engine/samplers/categorical.js';
import { Rng } from '../engine/rng.js';

const V = 4096;
const MASK = 3;

function row(rng: Rng, kind: number): Float32Array {
  const x = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    const u = rng.next();
    x[v] = kind === 0 ? (u - 0.5) * 8 + (v < 40 ? 6 : 0) // peaked head, flat tail
      : kind === 1 ? Math.round(u * 4) // many ties
        : kind === 2 ? (u - 0.5) * 2000 // weights that underflow to 0
          : (u - 0.5) * 0.01; // nearly uniform
  }
  if (kind === 0) x[MASK] = 50; // the banned id holds the largest logit
  return x;
}

const SHAPINGS: Shaping[] = [
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.7, topK: 0, topP: 1 },
  { temperature: 1.3, topK: 0, topP: 1 },
  { temperature: 0, topK: 0, topP: 1 },
  { temperature: 0, topK: 5, topP: 0.5 },
  { temperature: 1, topK: 50, topP: 1 },
  { temperature: 0.8, topK: 0, topP: 0.9 },
  { temperature: 1, topK: 20, topP: 0.7 },
];

test('draw gives the token and probability of distribution + sample, bit for bit', () => {
  const rng = new Rng(11);
  const us = [0, 1e-300, 0.5, 1 - 2 ** -53, 0.999999];
  let checked = 0;
  for (let kind = 0; kind < 4; kind++) {
    for (let r = 0; r < 6; r++) {
      const two = new Float32Array(2 * V);
      two.set(row(rng, kind), V); // off = V: draw must read from its offset only
      for (const s of SHAPINGS) {
        for (const banned of [MASK, null]) {
          for (const u of [...us, rng.next(), rng.next(), rng.next()]) {
            const p = distribution(two, V, V, s, banned);
            const want = sample(p, u);
            const got = draw(two, V, V, s, banned, u);
            assert.equal(got, want, `token, kind ${kind}, ${JSON.stringify(s)}, banned ${banned}, u ${u}`);
            assert.ok(Object.is(drawn.prob, p[want]!), `probability ${drawn.prob} != ${p[want]}, kind ${kind}, ${JSON.stringify(s)}, u ${u}`);
            checked++;
          }
        }
      }
    }
  }
  assert.equal(checked, 4 * 6 * SHAPINGS.length * 2 * 8);
});

test('the exactness check can fail: a draw with another uniform differs somewhere', () => {
  const rng = new Rng(3);
  const x = row(rng, 0);
  const s = SHAPINGS[0]!;
  let differ = 0;
  for (let i = 0; i < 50; i++) {
    const u = rng.next();
    if (draw(x, 0, V, s, MASK, u) !== sample(distribution(x, 0, V, s, MASK), (u + 0.5) % 1)) differ++;
  }
  assert.ok(differ > 0);
});
