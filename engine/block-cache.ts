// The pool of committed blocks' tensors (BD3-LM's keys and values; E2D2's encoder states), shared
// by every sequence of one engine. A block is keyed by a hash of (previous block's hash, its
// tokens), as vLLM's prefix cache keys its blocks, so the key names the whole prefix up to and
// including the block: two requests whose prompts start alike reach the same keys and share the
// blocks instead of recomputing them. Sequences hold refcounted handles, never the tensors'
// owners; an unreferenced block stays cached until the byte budget needs its room, and then
// the least recently used one goes first.
import { createHash } from 'node:crypto';

/** Per-block tensor layout: [nL, H, blockLen, Dh], keys and values alike. */
export interface BlockShape {
  nLayers: number;
  nHeads: number;
  headDim: number;
}

/**
 * A pooled block: the family's own record of tensors plus the pool's bookkeeping. The pool never
 * looks inside the record; `bytes` is what it costs against the budget.
 */
export type PoolBlock<T extends object> = T & {
  readonly hash: string;
  /** Tokens in the block (its length along the block axis). */
  readonly length: number;
  readonly bytes: number;
  refs: number;
};

export interface KvTensors {
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

export type CachedBlock = PoolBlock<KvTensors>;

/** Hash naming a block and everything before it. `prev` is null for a sequence's first block. */
export function blockHash(prev: string | null, tokens: ArrayLike<number>): string {
  const h = createHash('sha256');
  h.update(prev ?? 'root');
  h.update(Int32Array.from(tokens));
  return h.digest('base64url');
}

export class BlockPool<T extends object> {
  // Map order is recency order for the unreferenced blocks (oldest first).
  private readonly idle = new Map<string, PoolBlock<T>>();
  private readonly blocks = new Map<string, PoolBlock<T>>();
  private used = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly budgetBytes: number) {}

  get bytes(): number { return this.used; }
  get size(): number { return this.blocks.size; }

  /** Sum of all blocks' reference counts (0 once every sequence has released its handles). */
  get references(): number {
    let n = 0;
    for (const b of this.blocks.values()) n += b.refs;
    return n;
  }

  /** The block under this hash, referenced for the caller; null when absent. */
  acquire(hash: string): PoolBlock<T> | null {
    const b = this.take(hash);
    if (b) this.hits++;
    else this.misses++;
    return b;
  }

  private take(hash: string): PoolBlock<T> | null {
    const b = this.blocks.get(hash);
    if (!b) return null;
    if (b.refs++ === 0) this.idle.delete(hash);
    return b;
  }

  /**
   * Stores a block and returns it referenced; a block already under this hash (another
   * sequence computed it meanwhile) is shared instead. Null when the budget cannot make room
   * even after evicting every unreferenced block: the caller must release some of its own.
   */
  put(hash: string, length: number, tensors: T, bytes: number): PoolBlock<T> | null {
    const have = this.take(hash);
    if (have) return have;
    if (!this.makeRoom(bytes)) return null;
    const b = { ...tensors, hash, length, bytes, refs: 1 } as PoolBlock<T>;
    this.blocks.set(hash, b);
    this.used += bytes;
    return b;
  }

  release(b: PoolBlock<T>): void {
    if (b.refs <= 0) throw new Error('block released more often than acquired');
    if (--b.refs === 0) this.idle.set(b.hash, b);
  }

  private makeRoom(bytes: number): boolean {
    if (bytes > this.budgetBytes) return false;
    while (this.used + bytes > this.budgetBytes) {
      const oldest = this.idle.values().next();
      if (oldest.done) return false;
      const b = oldest.value;
      this.idle.delete(b.hash);
      this.blocks.delete(b.hash);
      this.used -= b.bytes;
      this.evictions++;
    }
    return true;
  }
}

/** BD3-LM's pool: every block holds keys and values of one [nL, H, length, Dh] shape. */
export class BlockCache extends BlockPool<KvTensors> {
  constructor(budgetBytes: number, readonly shape: BlockShape) {
    super(budgetBytes);
  }

  insert(hash: string, length: number, keys: Float32Array, values: Float32Array): CachedBlock | null {
    const { nLayers, nHeads, headDim } = this.shape;
    const n = nLayers * nHeads * length * headDim;
    if (keys.length !== n || values.length !== n) throw new Error(`block of ${length} tokens needs ${n} values per tensor, got ${keys.length}/${values.length}`);
    return this.put(hash, length, { keys, values }, keys.byteLength + values.byteLength);
  }
}

/** The blocks' keys (or values) side by side along the block axis: [nL, H, P, Dh], P = sum of lengths. */
export function concatBlocks(blocks: readonly CachedBlock[], shape: BlockShape, which: 'keys' | 'values', minLength = 0): { data: Float32Array; length: number } {
  const { nLayers, nHeads, headDim: Dh } = shape;
  const real = blocks.reduce((n, b) => n + b.length, 0);
  const P = Math.max(real, minLength);
  const out = new Float32Array(nLayers * nHeads * P * Dh);
  for (let lh = 0; lh < nLayers * nHeads; lh++) {
    let at = lh * P * Dh;
    for (const b of blocks) {
      const n = b.length * Dh;
      out.set(b[which].subarray(lh * n, (lh + 1) * n), at);
      at += n;
    }
  }
  return { data: out, length: P };
}

/** The first `length` positions along axis 2 of a [nL, H, L, Dh] tensor (a padded batch row). */
export function takeBlock(data: Float32Array, dims: readonly number[], length: number): Float32Array {
  const [nL, H, L, Dh] = dims as [number, number, number, number];
  if (L === length) return data.slice();
  const out = new Float32Array(nL * H * length * Dh);
  for (let lh = 0; lh < nL * H; lh++) out.set(data.subarray(lh * L * Dh, lh * L * Dh + length * Dh), lh * length * Dh);
  return out;
}
