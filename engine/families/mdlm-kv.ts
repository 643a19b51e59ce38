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
import type { CacheManager } from '../cache-manager.js';
import type { GenerationParams, KvCacheMode } from '../protocol.js';
import type { RowTensor } from '../row-tensor.js';
import type { RowCall } from '../sequence.js';
import { KeptKv, range, refreshCall, refreshDue, subBlockLength, subBlockSteps, type KvShape, type KvSpan } from './kv-past.js';
import { plannedSteps } from './masked-step.js';

export { KV_ROLE, KV_SUB_BLOCK, kvShape, type KvShape, type KvSpan } from './kv-past.js';

type Plan =
  | { kind: 'refresh'; C: number; L: number; keep: number[] }
  | { kind: 'cached'; C: number; from: number; to: number };

export class KvWindow {
  private readonly kept: KeptKv;
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
    pool: CacheManager | null,
  ) {
    this.block = subBlockLength(params);
    this.kept = new KeptKv(shape, pool);
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
    this.kept.drop();
  }

  /** The call for the window's next step. */
  call(context: readonly number[], canvas: Int32Array): RowCall {
    const C = context.length;
    const W = canvas.length;
    const row = context.concat(Array.from(canvas));
    const L = row.length;
    const due = refreshDue(this.kept, this.params, this.since);
    if (this.mode === 'prefix') {
      const boundary = C + this.block * Math.floor(leadingDecoded(canvas, this.maskId) / this.block);
      if (due || boundary > this.keptTo) {
        this.plan = { kind: 'refresh', C, L, keep: range(0, boundary) };
        return refreshCall(this.shape, row, C, W);
      }
      this.plan = { kind: 'cached', C, from: this.keptTo, to: L };
      return this.kept.call(row, this.keptTo, L);
    }
    this.pickSubBlock(canvas);
    const from = C + this.sub.from;
    const to = C + this.sub.to;
    if (due || this.sub.index !== this.keptSub) {
      this.plan = { kind: 'refresh', C, L, keep: range(0, from).concat(range(to, L)) };
      return refreshCall(this.shape, row, from, to - from);
    }
    this.plan = { kind: 'cached', C, from, to };
    return this.kept.call(row, from, to);
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
    const share = { ...this.params, steps: subBlockSteps(this.params.steps, from, to, W) };
    this.sub = { index, from, to, step: 0, steps: plannedSteps(share, n) };
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
    if (!this.kept.keep(extra, plan.L, plan.keep)) {
      this.keptTo = -1;
      this.keptSub = -1;
      return;
    }
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
