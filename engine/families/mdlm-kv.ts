// Fast-dLLM's approximate K/V caches for one MDLM sequence (issue 15, docs/approx-cache.md):
// which denoiser_kv call the window's next step makes, what the sequence keeps of the answer,
// and which part of the window the sampler moves. The window is cut into sub-blocks of
// `cache_block` tokens (KV_SUB_BLOCK when the request sets none). A refresh is one call over
// context + window with an empty past (every
// position a query: the plain denoiser's answer) that also returns every position's keys and
// values; the calls after it query some positions against the kept K/V of the others, which
// were computed while those queried positions held older tokens (the approximation).
//   prefix: the sampler runs over the whole window as with kv_cache off; kept are the context
//           and the window's leading finished sub-blocks, the rest is queried. A refresh runs
//           when another leading sub-block has finished, so with cache_refresh 1 (a refresh at
//           every call) the tokens are off's up to the two graphs' float noise (equal at
//           temperature 0, test/kv-cache.test.ts).
//   dual:   the sub-blocks are decoded left to right (Fast-dLLM's semi-autoregressive order),
//           each with its share of the window's steps; only the current sub-block is queried,
//           every other position (the still-masked suffix too) is kept. A refresh runs at each
//           sub-block's first call.
// Both also refresh every `cache_refresh` calls when it is set. The kept K/V are charged to the
// engine's cache budget (CacheManager.allocate) and freed at the next refresh, the window's end
// and the sequence's end; when they do not fit, that call's K/V are dropped and the next call
// is a refresh again (exact, uncached), so an admitted request never fails for the budget.
import { positionSlice } from '../block-table.js';
import type { CacheManager } from '../cache-manager.js';
import { selectPositions } from '../kv-positions.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams, KvCacheMode } from '../protocol.js';
import { positionsRow, type RowTensor } from '../row-tensor.js';
import type { RowCall } from '../sequence.js';
import { plannedSteps } from './masked-step.js';

export const KV_ROLE = 'denoiser_kv';
/** Sub-block length when a request sets no cache_block: Fast-dLLM's 32, a quarter of the default model's 128-token window. */
export const KV_SUB_BLOCK = 32;

/** Lanes (layers x K/V heads) and head size of the kv graph's past_* / present_* tensors. */
export interface KvShape {
  layers: number;
  heads: number;
  headDim: number;
}

export function kvShape(m: Manifest): KvShape {
  const a = m.architecture;
  return { layers: a.n_layers, heads: a.n_kv_heads ?? a.n_heads, headDim: a.head_dim };
}

/** The part of the window a step moves, with its step index and planned steps. */
export interface KvSpan {
  from: number;
  to: number;
  step: number;
  steps: number;
}

interface Past {
  keys: RowTensor;
  values: RowTensor;
  mask: RowTensor;
  bytes: number;
}

type Plan =
  | { kind: 'refresh'; C: number; L: number; keep: number[] }
  | { kind: 'cached'; C: number; from: number; to: number };

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

export class KvWindow {
  private past: Past | null = null;
  /** What the kept past stands for: prefix, the row positions before it; dual, the sub-block it leaves out. */
  private keptTo = -1;
  private keptSub = -1;
  private since = 0;
  private plan: Plan | null = null;
  /** prefix: the window's logits, rows the cached calls do not query keeping the refresh's. */
  private windowLogits: Float32Array | null = null;
  /** dual: the current sub-block (window coordinates) and its step count. */
  private sub = { index: -1, from: 0, to: 0, step: 0, steps: 0 };
  private closed = false;
  /** Sub-block length: the request's cache_block, else KV_SUB_BLOCK. */
  private readonly block: number;

  constructor(
    readonly mode: Exclude<KvCacheMode, 'off'>,
    private readonly params: GenerationParams,
    private readonly shape: KvShape,
    private readonly maskId: number,
    private readonly pool: CacheManager | null,
  ) {
    this.block = params.cacheBlock ?? KV_SUB_BLOCK;
  }

  /** A new window: nothing kept carries over (its row is another). */
  open(): void {
    this.drop();
    this.keptTo = -1;
    this.keptSub = -1;
    this.since = 0;
    this.plan = null;
    this.windowLogits = null;
    this.sub = { index: -1, from: 0, to: 0, step: 0, steps: 0 };
  }

  /** The sequence ended (or was cancelled): give the bytes back; later answers are ignored. */
  close(): void {
    this.closed = true;
    this.drop();
  }

  private drop(): void {
    if (this.past && this.pool) this.pool.free(this.past.bytes);
    this.past = null;
  }

  /** The call for the window's next step. */
  call(context: readonly number[], canvas: Int32Array): RowCall {
    const C = context.length;
    const W = canvas.length;
    const row = context.concat(Array.from(canvas));
    const L = row.length;
    const due = this.past === null || (this.params.cacheRefresh !== undefined && this.since >= this.params.cacheRefresh - 1);
    if (this.mode === 'prefix') {
      const boundary = C + this.block * Math.floor(leadingDecoded(canvas, this.maskId) / this.block);
      if (due || boundary > this.keptTo) {
        this.plan = { kind: 'refresh', C, L, keep: range(0, boundary) };
        return this.refreshCall(row, C, W);
      }
      this.plan = { kind: 'cached', C, from: this.keptTo, to: L };
      return this.cachedCall(row, this.keptTo, L);
    }
    this.pickSubBlock(canvas);
    const from = C + this.sub.from;
    const to = C + this.sub.to;
    if (due || this.sub.index !== this.keptSub) {
      this.plan = { kind: 'refresh', C, L, keep: range(0, from).concat(range(to, L)) };
      return this.refreshCall(row, from, to - from);
    }
    this.plan = { kind: 'cached', C, from, to };
    return this.cachedCall(row, from, to);
  }

  /** dual: the first sub-block that still holds a [MASK], with its share of the window's steps. */
  private pickSubBlock(canvas: Int32Array): void {
    const W = canvas.length;
    let index = Math.max(0, this.sub.index);
    while (index * this.block < W && !canvas.subarray(index * this.block, Math.min(W, (index + 1) * this.block)).includes(this.maskId)) index++;
    if (index === this.sub.index) return;
    const from = index * this.block;
    const to = Math.min(W, from + this.block);
    const n = to - from;
    // The window's steps split by position, so the sub-blocks' shares add up to the window's.
    const S = this.params.steps;
    const share = { ...this.params, steps: Math.max(1, Math.floor((S * to) / W) - Math.floor((S * from) / W)) };
    this.sub = { index, from, to, step: 0, steps: plannedSteps(share, n) };
  }

  /** Every position a query, empty past; logits for row positions [outStart, outStart + outLength). */
  private refreshCall(row: number[], outStart: number, outLength: number): RowCall {
    const { layers, heads, headDim } = this.shape;
    const dims = [layers, heads, 1, headDim];
    return {
      role: KV_ROLE,
      tokens: row,
      outputStart: outStart,
      outputLength: outLength,
      inputs: {
        positions: positionsRow(0, row.length),
        past_keys: { type: 'float32', data: new Float32Array(layers * heads * headDim), dims },
        past_values: { type: 'float32', data: new Float32Array(layers * heads * headDim), dims: [...dims] },
        past_mask: { type: 'int64', data: new BigInt64Array(1), dims: [1] },
      },
      outputs: ['present_keys', 'present_values'],
    };
  }

  private cachedCall(row: number[], from: number, to: number): RowCall {
    const p = this.past!;
    return {
      role: KV_ROLE,
      tokens: row.slice(from, to),
      outputStart: 0,
      outputLength: to - from,
      inputs: { positions: positionsRow(from, to - from), past_keys: p.keys, past_values: p.values, past_mask: p.mask },
    };
  }

  /**
   * The answer to the last call: keeps a refresh's K/V and returns the logits of the span
   * (span()) the sampler moves; null when the sequence has ended meanwhile.
   */
  take(logits: Float32Array, extra: Record<string, RowTensor> | undefined): Float32Array | null {
    const plan = this.plan!;
    if (this.closed) return null;
    if (plan.kind === 'refresh') {
      this.since = 0;
      this.keep(plan, extra);
      if (this.mode === 'prefix') this.windowLogits = logits;
      return logits;
    }
    this.since++;
    if (this.mode === 'dual') return logits;
    const out = this.windowLogits!;
    out.set(logits, (plan.from - plan.C) * (logits.length / (plan.to - plan.from)));
    return out;
  }

  private keep(plan: Extract<Plan, { kind: 'refresh' }>, extra: Record<string, RowTensor> | undefined): void {
    const k = extra?.present_keys;
    const v = extra?.present_values;
    if (!k || !v) throw new Error(`the ${KV_ROLE} graph returned no present_keys / present_values`);
    this.drop();
    const { layers, heads, headDim } = this.shape;
    const lanes = layers * heads;
    const P = Math.max(1, plan.keep.length);
    let keys: Float32Array;
    let values: Float32Array;
    if (plan.keep.length === 0) {
      keys = new Float32Array(lanes * headDim);
      values = new Float32Array(lanes * headDim);
    } else if (plan.keep.length === plan.keep[plan.keep.length - 1]! + 1) {
      // A prefix: one contiguous run, copied straight out of the (batch-padded) row.
      keys = positionSlice(k, 0, plan.keep.length);
      values = positionSlice(v, 0, plan.keep.length);
    } else {
      const at = { lanes, length: plan.L, headDim };
      keys = selectPositions(positionSlice(k, 0, plan.L), at, plan.keep);
      values = selectPositions(positionSlice(v, 0, plan.L), at, plan.keep);
    }
    const mask = new BigInt64Array(P).fill(plan.keep.length > 0 ? 1n : 0n);
    const bytes = keys.byteLength + values.byteLength + mask.byteLength;
    if (this.pool && !this.pool.allocate(bytes)) {
      // Over the budget: nothing kept, so the next call is a refresh again (exact, uncached).
      this.keptTo = -1;
      this.keptSub = -1;
      return;
    }
    const dims = [layers, heads, P, headDim];
    this.past = {
      keys: { type: 'float32', data: keys, dims },
      values: { type: 'float32', data: values, dims: [...dims] },
      mask: { type: 'int64', data: mask, dims: [P] },
      bytes,
    };
    this.keptTo = plan.keep.length;
    this.keptSub = this.sub.index;
  }

  /** What the sampler moves this step: dual, the current sub-block with its own step count. */
  span(W: number, step: number, steps: number): KvSpan {
    if (this.mode === 'prefix') return { from: 0, to: W, step, steps };
    return { from: this.sub.from, to: this.sub.to, step: this.sub.step, steps: this.sub.steps };
  }

  /** After a step (network or local): dual counts it against the sub-block's steps. */
  stepped(): void {
    if (this.mode === 'dual') this.sub.step++;
  }
}

/** Canvas positions from the start that hold a token (the decoded prefix, final). */
function leadingDecoded(canvas: Int32Array, maskId: number): number {
  let n = 0;
  while (n < canvas.length && canvas[n] !== maskId) n++;
  return n;
}
