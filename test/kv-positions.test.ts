// Per-position K/V views (engine/kv-positions.ts): selecting a prefix and a suffix around a
// queried sub-block, on a tensor whose every float names its lane, position and channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectPositions } from '../engine/kv-positions.js';

const at = { lanes: 3, length: 5, headDim: 2 };
const code = (lane: number, pos: number, ch: number): number => lane * 100 + pos * 10 + ch;
const kv = Float32Array.from({ length: 3 * 5 * 2 }, (_, i) => code(Math.floor(i / 10), Math.floor(i / 2) % 5, i % 2));

test('selectPositions keeps the named positions of every lane, in order', () => {
  const out = selectPositions(kv, at, [0, 1, 4]);
  const want: number[] = [];
  for (let lane = 0; lane < 3; lane++) for (const p of [0, 1, 4]) want.push(code(lane, p, 0), code(lane, p, 1));
  assert.deepEqual([...out], want);
  assert.deepEqual([...selectPositions(kv, at, [])], []);
  assert.throws(() => selectPositions(kv, at, [5]), /outside/);
  assert.throws(() => selectPositions(kv.subarray(1), at, [0]), /layout wants/);
});
