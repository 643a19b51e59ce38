// What the whole-sequence K/V caches of issue 15 share, whichever family runs them (MDLM:
// mdlm-kv.ts, Duo: duo-kv.ts; docs/approx-cache.md): the denoiser_kv graph's two kinds of call
// and the K/V one sequence keeps between them. A refresh is one call over the whole row with an
// empty past (every position a query: the plain denoiser's answer) that also returns every
// position's keys and values; a cached call queries some positions against the kept K/V of the
// others. The kept K/V are charged to the engine's cache budget (CacheManager.allocate) and given
// back when replaced or dropped; when they do not fit nothing is kept, so the owner's next call
// is a refresh again (exact, uncached) and an admitted request never fails for the budget.
import { positionSlice } from '../block-table.js';
import type { CacheLayout, CacheManager } from '../cache-manager.js';
import { selectPositions } from '../kv-positions.js';
import type { Manifest } from '../manifest.js';
import { positionsRow, type RowTensor } from '../row-tensor.js';
import type { RowCall } from '../sequence.js';
import type { GenerationParams } from '../protocol.js';

export const KV_ROLE = 'denoiser_kv';
/** Sub-block length: Fast-dLLM's 32, a quarter of the default model's 128-token window. */
export const KV_SUB_BLOCK = 32;

/** Lanes (layers x K/V heads) and head size of the kv graph's past_* / present_* tensors. */
export interface KvShape {
  layers: number;
  heads: number;
  headDim: number;
}

/** The part of the window a step moves, with its step index and planned steps. */
export interface KvSpan {
  from: number;
  to: number;
  step: number;
  steps: number;
}

export function kvShape(m: Manifest): KvShape {
  const a = m.architecture;
  return { layers: a.n_layers, heads: a.n_kv_heads ?? a.n_heads, headDim: a.head_dim };
}

/** A whole-sequence family's cache layout: only to charge kv_cache's per-sequence K/V to the engine's budget (no blocks). */
export function kvCacheLayout(m: Manifest): CacheLayout | undefined {
  if (!m.graphs[KV_ROLE]) return undefined;
  const s = kvShape(m);
  return { heads: s.heads, headDim: s.headDim, groups: {} };
}

/** A sub-block's share of a window's steps: split by position, so the shares add up to the window's (at least 1 each). */
export function subBlockSteps(steps: number, from: number, to: number, W: number): number {
  return Math.max(1, Math.floor((steps * to) / W) - Math.floor((steps * from) / W));
}

/** The sub-block length a request decodes in: its cache_block, else KV_SUB_BLOCK. */
export const subBlockLength = (p: GenerationParams): number => p.cacheBlock ?? KV_SUB_BLOCK;

/** Whether the next call must refresh: nothing is kept, or cache_refresh calls have passed since the last refresh. */
export const refreshDue = (kept: KeptKv, p: GenerationParams, since: number): boolean =>
  kept.empty || (p.cacheRefresh !== undefined && since >= p.cacheRefresh - 1);

export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Every position a query, empty past; logits for row positions [outStart, outStart + outLength). */
export function refreshCall(shape: KvShape, row: number[], outStart: number, outLength: number, inputs: Record<string, RowTensor> = {}): RowCall {
  const { layers, heads, headDim } = shape;
  const dims = [layers, heads, 1, headDim];
  return {
    role: KV_ROLE,
    tokens: row,
    outputStart: outStart,
    outputLength: outLength,
    inputs: {
      ...inputs,
      positions: positionsRow(0, row.length),
      past_keys: { type: 'float32', data: new Float32Array(layers * heads * headDim), dims },
      past_values: { type: 'float32', data: new Float32Array(layers * heads * headDim), dims: [...dims] },
      past_mask: { type: 'int64', data: new BigInt64Array(1), dims: [1] },
    },
    outputs: ['present_keys', 'present_values'],
  };
}

interface Past {
  keys: RowTensor;
  values: RowTensor;
  mask: RowTensor;
  bytes: number;
}

/** The K/V one sequence keeps from its last refresh, charged to the pool. */
export class KeptKv {
  private past: Past | null = null;

  constructor(
    private readonly shape: KvShape,
    private readonly pool: CacheManager | null,
  ) {}

  get empty(): boolean {
    return this.past === null;
  }

  /** Give the bytes back. */
  drop(): void {
    if (this.past && this.pool) this.pool.free(this.past.bytes);
    this.past = null;
  }

  /**
   * Keep the row positions `keep` (ascending) of a refresh over `L` positions; false when they
   * do not fit the budget (nothing kept, so the next call must be a refresh).
   */
  keep(extra: Record<string, RowTensor> | undefined, L: number, keep: readonly number[]): boolean {
    const k = extra?.present_keys;
    const v = extra?.present_values;
    if (!k || !v) throw new Error(`the ${KV_ROLE} graph returned no present_keys / present_values`);
    this.drop();
    const { layers, heads, headDim } = this.shape;
    const lanes = layers * heads;
    const P = Math.max(1, keep.length);
    let keys: Float32Array;
    let values: Float32Array;
    if (keep.length === 0) {
      keys = new Float32Array(lanes * headDim);
      values = new Float32Array(lanes * headDim);
    } else if (keep.length === keep[keep.length - 1]! + 1) {
      // A prefix: one contiguous run, copied straight out of the (batch-padded) row.
      keys = positionSlice(k, 0, keep.length);
      values = positionSlice(v, 0, keep.length);
    } else {
      const at = { lanes, length: L, headDim };
      keys = selectPositions(positionSlice(k, 0, L), at, keep);
      values = selectPositions(positionSlice(v, 0, L), at, keep);
    }
    const mask = new BigInt64Array(P).fill(keep.length > 0 ? 1n : 0n);
    const bytes = keys.byteLength + values.byteLength + mask.byteLength;
    // Over the budget: nothing kept, so the next call is a refresh again (exact, uncached).
    if (this.pool && !this.pool.allocate(bytes)) return false;
    const dims = [layers, heads, P, headDim];
    this.past = {
      keys: { type: 'float32', data: keys, dims },
      values: { type: 'float32', data: values, dims: [...dims] },
      mask: { type: 'int64', data: mask, dims: [P] },
      bytes,
    };
    return true;
  }

  /** Row positions [from, to) as queries against the kept K/V; logits for all of them. */
  call(row: number[], from: number, to: number, inputs: Record<string, RowTensor> = {}): RowCall {
    const p = this.past!;
    return {
      role: KV_ROLE,
      tokens: row.slice(from, to),
      outputStart: 0,
      outputLength: to - from,
      inputs: { ...inputs, positions: positionsRow(from, to - from), past_keys: p.keys, past_values: p.values, past_mask: p.mask },
    };
  }
}
