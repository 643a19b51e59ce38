// Approximate K/V caches for one Duo sequence (issue 15, docs/approx-cache.md#duo): which
// denoiser_kv call the window's next step makes and which part of the window the sampler moves.
// Duo differs from MDLM in two ways that decide what may be kept:
//   - its sampler redraws every canvas position at every step (no token is final before the
//     window's last step), so no decoded prefix of the window stays fixed to cache;
//   - its network reads sigma, which conditions every position's adaLN, so even the context's
//     keys/values (fixed tokens) hold for the sigma of the call that computed them only.
// Hence:
//   prefix: the sampler runs over the whole window as with kv_cache off; kept is the context
//           (prompt and committed text) only, the whole window is queried. A refresh runs at the
//           window's first call and every `cache_refresh` calls, so with cache_refresh 1 every
//           call is a full one and the tokens are off's (equal at temperature 0, tested);
//           between refreshes the context's K/V are those of an earlier sigma.
//   dual:   the window is decoded in sub-blocks left to right (as MDLM's dual), each running
//           Duo's whole schedule (noise to clean) in its share of the window's steps; the
//           sub-blocks to its right hold the prior's noise and those to its left are finished.
//           Only the current sub-block is queried; every other position's K/V are kept from a
//           refresh at the sub-block's first call (and every `cache_refresh` calls).
// The kept K/V live in the engine's pool (kv-past.ts: charged, freed, uncached over budget).
import type { CacheManager } from '../cache-manager.js';
import type { GenerationParams, KvCacheMode } from '../protocol.js';
import type { RowTensor } from '../row-tensor.js';
import type { RowCall } from '../sequence.js';
import { KeptKv, range, refreshCall, refreshDue, subBlockLength, subBlockSteps, type KvShape, type KvSpan } from './kv-past.js';

export class DuoKvWindow {
  private readonly kept: KeptKv;
  private since = 0;
  private plan: { kind: 'refresh'; L: number; keep: number[] } | { kind: 'cached' } | null = null;
  /** dual: the current sub-block (window coordinates) and its own step count. */
  private sub = { index: 0, from: 0, to: 0, step: 0, steps: 0 };
  private W = 0;
  private closed = false;

  constructor(
    readonly mode: Exclude<KvCacheMode, 'off'>,
    private readonly params: GenerationParams,
    private readonly shape: KvShape,
    pool: CacheManager | null,
  ) {
    this.kept = new KeptKv(shape, pool);
  }

  /** A new window of W canvas positions: nothing kept carries over (its row is another). */
  open(W: number): void {
    this.kept.drop();
    this.since = 0;
    this.plan = null;
    this.W = W;
    this.enter(0);
  }

  private enter(index: number): void {
    const block = subBlockLength(this.params);
    const from = index * block;
    const to = Math.min(this.W, from + block);
    this.sub = { index, from, to, step: 0, steps: subBlockSteps(this.params.steps, from, to, this.W) };
  }

  /** The sequence ended (or was cancelled): give the bytes back; later answers are ignored. */
  close(): void {
    this.closed = true;
    this.kept.drop();
  }

  /** The call for the window's next step; `inputs` are the row's own (sigma). */
  call(context: readonly number[], canvas: Int32Array, inputs: Record<string, RowTensor>): RowCall {
    const C = context.length;
    const row = context.concat(Array.from(canvas));
    const L = row.length;
    const due = refreshDue(this.kept, this.params, this.since);
    if (this.mode === 'prefix') {
      if (due) {
        this.plan = { kind: 'refresh', L, keep: range(0, C) };
        return refreshCall(this.shape, row, C, canvas.length, inputs);
      }
      this.plan = { kind: 'cached' };
      return this.kept.call(row, C, L, inputs);
    }
    const from = C + this.sub.from;
    const to = C + this.sub.to;
    if (due || this.sub.step === 0) {
      this.plan = { kind: 'refresh', L, keep: range(0, from).concat(range(to, L)) };
      return refreshCall(this.shape, row, from, to - from, inputs);
    }
    this.plan = { kind: 'cached' };
    return this.kept.call(row, from, to, inputs);
  }

  /** The answer to the last call: the logits of span(); keeps a refresh's K/V; null once closed. */
  take(logits: Float32Array, extra: Record<string, RowTensor> | undefined): Float32Array | null {
    const plan = this.plan!;
    if (this.closed) return null;
    if (plan.kind === 'refresh') {
      this.since = 0;
      this.kept.keep(extra, plan.L, plan.keep);
    } else {
      this.since++;
    }
    return logits;
  }

  /** What the sampler moves this step: prefix, the window at its own step; dual, the current sub-block. */
  span(W: number, step: number, steps: number): KvSpan {
    if (this.mode === 'prefix') return { from: 0, to: W, step, steps };
    return { from: this.sub.from, to: this.sub.to, step: this.sub.step, steps: this.sub.steps };
  }

  /** After a step: dual counts it against the sub-block's steps and moves on when they are done. */
  stepped(): void {
    if (this.mode !== 'dual') return;
    this.sub.step++;
    if (this.sub.step >= this.sub.steps && this.sub.to < this.W) this.enter(this.sub.index + 1);
  }
}
