// The block cache on its own: the pool (prefix hashes, reference counts, LRU eviction of
// unreferenced blocks only, the byte budget), the manager (prefix lookup, shape checks, stats)
// and one sequence's block table (window, eviction of its own oldest, past tensors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockPool, blockHash } from '../engine/block-pool.js';
import { BlockTable, positionSlice } from '../engine/block-table.js';
import { CacheManager, type CacheLayout } from '../engine/cache-manager.js';

const layout: CacheLayout = { heads: 1, headDim: 2, groups: { past: { keys: 'k', values: 'v', layers: 1 } } };
const block = (v: number, len = 2) => ({ k: new Float32Array(len * 2).fill(v), v: new Float32Array(len * 2).fill(v) });
const BYTES = 2 * 4 * 4; // keys + values of a 2-token block

test('a hash names the whole prefix: same tokens after a different prefix is another block', () => {
  const a = blockHash(null, [1, 2]);
  assert.equal(blockHash(null, [1, 2]), a);
  assert.notEqual(blockHash(null, [1, 3]), a);
  assert.notEqual(blockHash(blockHash(null, [9, 9]), [1, 2]), a);
  assert.notEqual(blockHash(a, [3, 4]), blockHash(blockHash(null, [1, 3]), [3, 4]));
});

test('acquire shares a block and counts references; release makes it evictable, oldest first', () => {
  const c = new BlockPool<string>(3 * BYTES);
  const a = c.put('a', 2, 'A', BYTES)!;
  const b = c.put('b', 2, 'B', BYTES)!;
  const again = c.acquire('a')!;
  assert.equal(again, a);
  assert.equal(a.refs, 2);
  assert.equal(c.put('a', 2, 'other', BYTES), a, 'an existing block is shared, not replaced');
  assert.equal(a.refs, 3);
  const cc = c.put('c', 2, 'C', BYTES)!;
  assert.equal(c.bytes, 3 * BYTES);
  // Full and everything referenced: no room.
  assert.equal(c.put('d', 2, 'D', BYTES), null);
  c.release(b);
  c.release(cc);
  // b was released first, so it goes first.
  assert.ok(c.put('d', 2, 'D', BYTES));
  assert.equal(c.acquire('b'), null);
  assert.ok(c.acquire('c'));
  assert.equal(c.evictions, 1);
  assert.ok(c.bytes <= c.budgetBytes);
  for (let i = 0; i < 3; i++) c.release(a);
  assert.throws(() => c.release(a), /more often/);
});

test('the manager: a block larger than the whole budget is refused; a wrong tensor size is an error; lookup stops at the first miss', () => {
  assert.equal(new CacheManager(layout, BYTES - 1).store('x', 2, block(1)), null);
  assert.throws(() => new CacheManager(layout, 1 << 20).store('y', 3, block(1)), /needs 6 values/);
  const m = new CacheManager(layout, 1 << 20);
  m.store('a', 2, block(1));
  m.store('c', 2, block(3));
  const found = m.lookup(['a', 'b', 'c']);
  assert.deepEqual(found.map((b) => b.hash), ['a']);
  assert.equal(found[0]!.refs, 2);
  assert.deepEqual(m.stats(), {
    bytes: 2 * BYTES, budgetBytes: 1 << 20, blocks: 2, references: 3, hits: 1, misses: 1, evictions: 0,
    privateBytes: 0, privateAllocations: 0, privateFallbacks: 0,
  });
});

test('private allocations (MDLM kv_cache) share the budget with blocks: they evict idle blocks, never referenced ones', () => {
  const m = new CacheManager(layout, 3 * BYTES);
  const held = m.store('a', 2, block(1))!;
  const idle = m.store('b', 2, block(2))!;
  m.release(idle);
  assert.ok(m.allocate(BYTES + 1), 'fits once the idle block is evicted');
  assert.equal(m.stats().evictions, 1);
  assert.equal(m.stats().privateBytes, BYTES + 1);
  assert.equal(m.stats().bytes, 2 * BYTES + 1);
  assert.equal(m.allocate(BYTES), false, 'the referenced block stays: no room');
  assert.equal(m.stats().privateFallbacks, 1);
  m.free(BYTES + 1);
  assert.deepEqual([m.stats().bytes, m.stats().privateBytes, m.stats().privateAllocations], [BYTES, 0, 0]);
  assert.throws(() => m.free(1), /more often than reserved/);
  m.release(held);
});

test('a block table lays its blocks side by side per layer-head, slides with its window and releases everything', () => {
  const l2: CacheLayout = { heads: 1, headDim: 1, groups: { past: { keys: 'k', values: 'v', layers: 2 } } };
  const m = new CacheManager(l2, 1 << 20);
  const t = new BlockTable(l2, 2, m);
  const empty = t.past('past');
  assert.deepEqual(empty.keys.dims, [2, 1, 1, 1]);
  assert.deepEqual(Array.from(empty.mask.data as BigInt64Array), [0n]);
  // [nL=2, H=1, len=2, Dh=1]: layer 0 then layer 1.
  t.store('x', 2, { k: Float32Array.from([1, 2, 10, 20]), v: new Float32Array(4) });
  t.store('y', 1, { k: Float32Array.from([3, 30]), v: new Float32Array(2) });
  const p = t.past('past');
  assert.deepEqual(p.keys.dims, [2, 1, 3, 1]);
  assert.deepEqual(Array.from(p.keys.data as Float32Array), [1, 2, 3, 10, 20, 30]);
  assert.equal(t.past('past'), p, 'unchanged blocks reuse one tensor');
  t.store('z', 1, { k: Float32Array.from([4, 40]), v: new Float32Array(2) });
  assert.equal(t.count, 2, 'the oldest block left the window');
  assert.deepEqual(Array.from(t.past('past').keys.data as Float32Array), [3, 4, 30, 40]);
  assert.equal(m.stats().references, 2);
  assert.deepEqual(m.lookup(['x']).length, 1, 'a block that left the window stays cached');
  t.clear();
  assert.equal(m.stats().references, 1);
  // A padded row of a batch output: its first positions.
  assert.deepEqual(Array.from(positionSlice({ type: 'float32', data: Float32Array.from([1, 2, 3, 0, 10, 20, 30, 0]), dims: [2, 1, 4, 1] }, 0, 3)), [1, 2, 3, 10, 20, 30]);
});

test('a full budget makes a table give up its own oldest block; one that cannot hold a single block is an error', () => {
  const m = new CacheManager(layout, 2 * BYTES);
  const t = new BlockTable(layout, 8, m);
  t.store('a', 2, block(1));
  t.store('b', 2, block(2));
  t.store('c', 2, block(3));
  assert.equal(t.count, 2);
  assert.ok(m.stats().bytes <= 2 * BYTES);
  assert.equal(m.stats().evictions, 1);
  assert.throws(() => new BlockTable(layout, 8, new CacheManager(layout, BYTES - 1)).store('x', 2, block(1)), /cannot hold one block/);
});
