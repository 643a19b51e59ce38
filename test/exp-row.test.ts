// expRowSum's SIMD kernel must return exactly Math.exp's doubles and the sum the samplers
// computed before it existed, or tokens at a fixed seed would change. Compared over millions of
// arguments across the whole range a softmax sees (the row's max, temperatures, odd lengths, an
// offset into a batch buffer, a banned id) and the edges the kernel hands back to Math.exp.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expRowSimd, expRowSum, rowWeights } from '../engine/samplers/exp-row.js';

function kernelRow(x: Float32Array, off: number, V: number, max: number, invT: number, banned: number | null): { e: Float64Array; sum: number } {
  const sum = expRowSum(x, off, V, max, invT, banned);
  return { e: rowWeights(), sum };
}
import { Rng } from '../engine/rng.js';

function reference(x: Float32Array, off: number, V: number, max: number, invT: number, banned: number | null): { e: Float64Array; sum: number } {
  const e = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    e[i] = i === banned ? 0 : Math.exp((x[off + i]! - max) * invT);
    sum += e[i]!;
  }
  return { e, sum };
}

test('WebAssembly SIMD is there on Node 20 (else the kernel is not what runs)', () => {
  assert.equal(expRowSimd, true);
});

test('every exp and the row sum are bit for bit those of Math.exp in index order', () => {
  const rng = new Rng(5);
  let checked = 0;
  for (let r = 0; r < 240; r++) {
    const V = r % 4 === 3 ? 4095 : r % 4 === 2 ? 7 : 4096;
    const off = r % 3;
    const x = new Float32Array(V + off);
    const spread = [0.5, 4, 30, 300, 1600][r % 5]!; // 1600: tails below -708, subnormal and zero results
    for (let i = 0; i < x.length; i++) x[i] = (rng.next() - 0.5) * spread;
    let max = -Infinity;
    for (let i = off; i < off + V; i++) max = Math.max(max, x[i]!);
    const invT = [1, 0.7, 1.3, 1 / 0.9, 4][r % 5]!;
    // A max that is not the row's: positive arguments (lanes left to Math.exp).
    const m = r % 7 === 0 ? max - 3 : max;
    const banned = r % 2 === 0 ? 3 % V : null;
    const want = reference(x, off, V, m, invT, banned);
    const got = kernelRow(x, off, V, m, invT, banned);
    for (let i = 0; i < V; i++) {
      if (!Object.is(got.e[i], want.e[i])) assert.fail(`row ${r}: exp(${(x[off + i]! - m) * invT}) = ${got.e[i]}, Math.exp gives ${want.e[i]}`);
      checked++;
    }
    assert.ok(Object.is(got.sum, want.sum), `row ${r}: sum ${got.sum} != ${want.sum}`);
  }
  assert.ok(checked > 600_000);
});

test('arguments near the kernel\'s branch points (0.5 ln2, 1.5 ln2, 2^-28, -708) and NaN', () => {
  const pts = [0.5 * Math.LN2, 1.5 * Math.LN2, 2 ** -28, 708, 745, 1e-300, 0];
  const xs: number[] = [];
  for (const p of pts) for (let d = -40; d <= 40; d++) xs.push(-(p * (1 + d * 2 ** -50)), -(p + d * 1e-12));
  const x = Float32Array.from(xs);
  // max 0 and invT 1: the arguments are the float32 values themselves.
  const want = reference(x, 0, x.length, 0, 1, null);
  const got = kernelRow(x, 0, x.length, 0, 1, null);
  for (let i = 0; i < x.length; i++) assert.ok(Object.is(got.e[i], want.e[i]), `exp(${x[i]})`);
  x[5] = NaN;
  const nan = kernelRow(x, 0, x.length, 0, 1, null);
  assert.ok(Number.isNaN(nan.sum) && Number.isNaN(nan.e[5]!) && Object.is(nan.e[4], want.e[4]));
});
