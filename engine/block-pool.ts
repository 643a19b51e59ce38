// The pool of committed blocks' tensors, shared by every sequence of one engine: a hash map of
// blocks, their reference counts, a free queue of the unreferenced ones (least recently used
// first) and a byte budget, as vLLM's BlockPool. A block is keyed by a hash of (previous
// block's hash, its tokens), as vLLM's prefix cache keys its blocks, so the key names the whole
// prefix up to and including the block: two requests whose prompts start alike reach the same
// keys and share the blocks instead of recomputing them. The pool never looks inside a block's
// tensors; an unreferenced block stays cached until the budget needs its room.
import { createHash } from 'node:crypto';

/** A pooled block: the family's tensors plus the pool's bookkeeping. */
export interface PoolBlock<T> {
  readonly tensors: T;
  readonly hash: string;
  /** Tokens in the block (its length along the block axis). */
  readonly length: number;
  readonly bytes: number;
  refs: number;
}

/** Hash naming a block and everything before it. `prev` is null for a sequence's first block. */
export function blockHash(prev: string | null, tokens: ArrayLike<number>): string {
  const h = createHash('sha256');
  h.update(prev ?? 'root');
  h.update(Int32Array.from(tokens));
  return h.digest('base64url');
}

export class BlockPool<T> {
  // Map order is recency order for the unreferenced blocks (oldest first).
  private readonly idle = new Map<string, PoolBlock<T>>();
  private readonly blocks = new Map<string, PoolBlock<T>>();
  private used = 0;
  private reserved = 0;
  /** Private allocations held now (reserve minus unreserve). */
  allocations = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly budgetBytes: number) {}

  get bytes(): number { return this.used; }
  get size(): number { return this.blocks.size; }
  /** Of `bytes`, those held by private allocations rather than shared blocks. */
  get reservedBytes(): number { return this.reserved; }

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
    const b: PoolBlock<T> = { tensors, hash, length, bytes, refs: 1 };
    this.blocks.set(hash, b);
    this.used += bytes;
    return b;
  }

  release(b: PoolBlock<T>): void {
    if (b.refs <= 0) throw new Error('block released more often than acquired');
    if (--b.refs === 0) this.idle.set(b.hash, b);
  }

  /**
   * Bytes one sequence holds for itself (no hash, never shared: MDLM's whole-sequence K/V,
   * which depend on every token of the row), charged to the same budget as the blocks and
   * evicting unreferenced blocks to fit; false when even that leaves too little room.
   */
  reserve(bytes: number): boolean {
    if (!this.makeRoom(bytes)) return false;
    this.used += bytes;
    this.reserved += bytes;
    this.allocations++;
    return true;
  }

  unreserve(bytes: number): void {
    if (bytes > this.reserved || this.allocations <= 0) throw new Error('private bytes released more often than reserved');
    this.used -= bytes;
    this.reserved -= bytes;
    this.allocations--;
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
