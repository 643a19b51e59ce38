// The block pool on its own: prefix hashes, reference counts, LRU eviction of unreferenced
// blocks only, and the byte budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockCache, blockHash, concatBlocks, takeBlock } from '../engine/block-cache.js';

const shape = { nLayers: 1, nHeads: 1, headDim: 2 };
const block = (v: number, len = 2) => new Float32Array(len * 2).fill(v);
const BYTES = 2 * 4 * 4; // keys + values of a 2-token block

test('a hash names the whole prefix: same tokens after a different prefix is another block', () => {
  const a = blockHash(null, [1, 2]);
  assert.equal(blockHash(null, [1, 2]), a);
  assert.notEqual(blockHash(null, [1, 3]), a);
  assert.notEqual(blockHash(blockHash(null, [9, 9]), [1, 2]), a);
  assert.notEqual(blockHash(a, [3, 4]), blockHash(blockHash(null, [1, 3]), [3, 4]));
});

test('acquire shares a block and counts references; release makes it evictable, oldest first', () => {
  const c = new BlockCache(3 * BYTES, shape);
  const h = ['a', 'b', 'c', 'd'];
  const a = c.insert(h[0]!, 2, block(1), block(1))!;
  const b = c.insert(h[1]!, 2, block(2), block(2))!;
  const again = c.acquire(h[0]!)!;
  assert.equal(again, a);
  assert.equal(a.refs, 2);
  assert.equal(c.insert(h[0]!, 2, block(7), block(7)), a, 'an existing block is shared, not replaced');
  assert.equal(a.refs, 3);
  const cc = c.insert(h[2]!, 2, block(3), block(3))!;
  assert.equal(c.bytes, 3 * BYTES);
  // Full and everything referenced: no room.
  assert.equal(c.insert(h[3]!, 2, block(4), block(4)), null);
  c.release(b);
  c.release(cc);
  // b was released first, so it goes first.
  assert.ok(c.insert(h[3]!, 2, block(4), block(4)));
  assert.equal(c.acquire(h[1]!), null);
  assert.ok(c.acquire(h[2]!));
  assert.equal(c.evictions, 1);
  assert.ok(c.bytes <= c.budgetBytes);
  for (let i = 0; i < 3; i++) c.release(a);
  assert.throws(() => c.release(a), /more often/);
});

test('a block larger than the whole budget is refused; a wrong tensor size is an error', () => {
  const c = new BlockCache(BYTES - 1, shape);
  assert.equal(c.insert('x', 2, block(1), block(1)), null);
  assert.throws(() => new BlockCache(1 << 20, shape).insert('y', 3, block(1), block(1)), /needs 6 values/);
});

test('concatBlocks lays blocks side by side per layer-head; takeBlock cuts a padded row', () => {
  const s2 = { nLayers: 2, nHeads: 1, headDim: 1 };
  const c = new BlockCache(1 << 20, s2);
  // [nL=2, H=1, len=2, Dh=1]: layer 0 then layer 1.
  const x = c.insert('x', 2, Float32Array.from([1, 2, 10, 20]), new Float32Array(4))!;
  const y = c.insert('y', 1, Float32Array.from([3, 30]), new Float32Array(2))!;
  const k = concatBlocks([x, y], s2, 'keys', 4);
  assert.equal(k.length, 4);
  assert.deepEqual(Array.from(k.data), [1, 2, 3, 0, 10, 20, 30, 0]);
  assert.deepEqual(Array.from(takeBlock(k.data, [2, 1, 4, 1], 3)), [1, 2, 3, 10, 20, 30]);
});
