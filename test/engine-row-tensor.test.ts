// Batching of per-row graph inputs: rows of different lengths stack into one padded tensor,
// and each row gets back exactly its own slice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowOf, stackRows } from '../engine/row-tensor.js';
import { batchFeeds } from '../engine/scheduler.js';

test('stackRows pads every axis to the longest row, with the row\'s pad value', () => {
  const a = { type: 'float32' as const, data: Float32Array.from([1, 2, 3, 4, 5, 6]), dims: [3, 2] };
  const b = { type: 'float32' as const, data: Float32Array.from([7, 8]), dims: [1, 2], pad: -1 };
  const t = stackRows([a, b]);
  assert.deepEqual(t.dims, [2, 3, 2]);
  assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1, -1]);
  assert.deepEqual(Array.from(rowOf(t, 1).data as Float32Array), [7, 8, -1, -1, -1, -1]);
});

test('stackRows pads inner axes too (a KV cache whose length axis is not the last)', () => {
  // [heads=2, len, d=1]: row a has len 2, row b len 1.
  const a = { type: 'float32' as const, data: Float32Array.from([1, 2, 3, 4]), dims: [2, 2, 1] };
  const b = { type: 'float32' as const, data: Float32Array.from([5, 6]), dims: [2, 1, 1] };
  const t = stackRows([a, b]);
  assert.deepEqual(t.dims, [2, 2, 2, 1]);
  assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4, 5, 0, 6, 0]);
});

test('stackRows: per-row scalars become [B]; mismatched rank is refused', () => {
  const t = stackRows([0.5, 0.25].map((v) => ({ type: 'float32' as const, data: Float32Array.of(v), dims: [] })));
  assert.deepEqual(t.dims, [2]);
  assert.deepEqual(Array.from(t.data as Float32Array), [0.5, 0.25]);
  assert.throws(() => stackRows([
    { type: 'float32', data: Float32Array.of(1), dims: [1] },
    { type: 'float32', data: Float32Array.of(1), dims: [] },
  ]), /rank/);
});

test('batchFeeds: tokens right-padded, attention_mask 0 on padding, extra inputs stacked', () => {
  const f = batchFeeds([
    { role: 'denoiser', tokens: [5, 6, 7], outputStart: 0, outputLength: 3, inputs: { sigma: { type: 'float32', data: Float32Array.of(0.1), dims: [] } } },
    { role: 'denoiser', tokens: [8], outputStart: 0, outputLength: 1, inputs: { sigma: { type: 'float32', data: Float32Array.of(0.2), dims: [] } } },
  ]);
  assert.deepEqual(f.tokens!.dims, [2, 3]);
  assert.deepEqual(Array.from(f.tokens!.data as BigInt64Array, Number), [5, 6, 7, 8, 0, 0]);
  assert.deepEqual(Array.from(f.attention_mask!.data as BigInt64Array, Number), [1, 1, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(f.sigma!.data as Float32Array), [Math.fround(0.1), Math.fround(0.2)]);
  assert.throws(() => batchFeeds([
    { role: 'denoiser', tokens: [1], outputStart: 0, outputLength: 1, inputs: { sigma: { type: 'float32', data: Float32Array.of(0), dims: [] } } },
    { role: 'denoiser', tokens: [1], outputStart: 0, outputLength: 1 },
  ]), /sigma/);
});
