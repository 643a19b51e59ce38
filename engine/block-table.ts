// One sequence's blocks in the engine's cache, as vLLM's block tables are: the committed blocks
// inside its attention window, oldest first. It finds the prompt's cached prefix, stores the
// blocks the sequence computes (giving up its own oldest when the budget is full of referenced
// blocks), slides with the window, lays the blocks out as the graphs' past tensors
// ([layers, heads, P, headDim] per group, rebuilt only when the blocks changed, so the many
// denoising steps of one block reuse one tensor) and gives every reference back at the end.
// Without a manager (the recompute baselines) the blocks are the table's own.
import type { RowTensor } from './row-tensor.js';
import { blockBytes, type BlockTensors, type CacheLayout, type CacheManager, type CachedBlock } from './cache-manager.js';

/** A graph's past for one row: keys, values [layers, heads, P, headDim] and mask [P]. */
export interface PastTensors {
  keys: RowTensor;
  values: RowTensor;
  mask: RowTensor;
}

type Held = Pick<CachedBlock, 'tensors' | 'length'>;

export class BlockTable {
  private readonly blocks: Held[] = [];
  private readonly views = new Map<string, PastTensors>();

  constructor(
    private readonly layout: CacheLayout,
    /** Committed blocks that fit beside the one being generated. */
    private readonly window: number,
    private readonly manager: CacheManager | null,
  ) {}

  /** Tokens held. */
  get length(): number {
    return this.blocks.reduce((n, b) => n + b.length, 0);
  }

  get count(): number {
    return this.blocks.length;
  }

  /** Takes the cached prefix of these hashes; how many blocks and tokens were found. */
  lookup(hashes: readonly string[]): { blocks: number; tokens: number } {
    const found = this.manager?.lookup(hashes) ?? [];
    for (const b of found) this.push(b);
    return { blocks: found.length, tokens: found.reduce((n, b) => n + b.length, 0) };
  }

  /** A block the sequence computed: into the cache (or its own, without a manager). */
  store(hash: string, length: number, tensors: BlockTensors): void {
    if (!this.manager) {
      blockBytes(this.layout, length, tensors);
      this.push({ tensors, length });
      return;
    }
    for (;;) {
      const b = this.manager.store(hash, length, tensors);
      if (b) { this.push(b); return; }
      if (this.blocks.length === 0) throw new Error(`the block cache budget (${this.manager.budgetBytes} bytes) cannot hold one block; raise --cache-mb`);
      this.dropOldest();
    }
  }

  private push(b: Held): void {
    this.blocks.push(b);
    while (this.blocks.length > this.window) this.dropOldest();
    this.views.clear();
  }

  private dropOldest(): void {
    const b = this.blocks.shift();
    // With a manager every block came from it (lookup or store).
    if (b && this.manager) this.manager.release(b as CachedBlock);
    this.views.clear();
  }

  /** Gives every block back (the sequence ended, or a baseline recomputes its context). */
  clear(): void {
    while (this.blocks.length > 0) this.dropOldest();
  }

  /** The blocks as one group's past. At least one slot: an empty past is one masked dummy slot. */
  past(group: string): PastTensors {
    let v = this.views.get(group);
    if (!v) { v = this.concat(group); this.views.set(group, v); }
    return v;
  }

  private concat(group: string): PastTensors {
    const g = this.layout.groups[group];
    if (!g) throw new Error(`no cache group '${group}'`);
    const { heads: H, headDim: Dh } = this.layout;
    const nLH = g.layers * H;
    const real = this.length;
    const P = Math.max(1, real);
    const keys = new Float32Array(nLH * P * Dh);
    const values = new Float32Array(keys.length);
    let at = 0;
    for (const b of this.blocks) {
      const n = b.length * Dh;
      const k = b.tensors[g.keys]!;
      const val = b.tensors[g.values]!;
      for (let lh = 0; lh < nLH; lh++) {
        keys.set(k.subarray(lh * n, (lh + 1) * n), lh * P * Dh + at * Dh);
        values.set(val.subarray(lh * n, (lh + 1) * n), lh * P * Dh + at * Dh);
      }
      at += b.length;
    }
    const mask = new BigInt64Array(P);
    mask.fill(1n, 0, real);
    const dims = [g.layers, H, P, Dh];
    return {
      keys: { type: 'float32', data: keys, dims },
      values: { type: 'float32', data: values, dims: [...dims] },
      mask: { type: 'int64', data: mask, dims: [P] },
    };
  }
}

/**
 * Positions [from, to) of a row's [nL, H, Lpadded, headDim] graph output (a batch pads L to its
 * longest row), as a compact [nL, H, to - from, headDim] copy: one block's tensor.
 */
export function positionSlice(t: RowTensor, from: number, to: number): Float32Array {
  const [nL, H, L, Dh] = t.dims as [number, number, number, number];
  if (to > L || from < 0 || from > to) throw new Error(`asked for positions [${from}, ${to}) of an output with ${L}`);
  const src = t.data as Float32Array;
  const n = to - from;
  const out = new Float32Array(nL * H * n * Dh);
  for (let lh = 0; lh < nL * H; lh++) out.set(src.subarray((lh * L + from) * Dh, (lh * L + to) * Dh), lh * n * Dh);
  return out;
}
