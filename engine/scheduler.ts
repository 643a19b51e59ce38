// Iteration-level batching: every tick, each live sequence says what it needs; sequences that
// need the same graph are padded into one batch (attention_mask 0 on padding, which the graphs
// mask out of attention, so a row's result does not depend on its batch), one run serves them
// all, and each gets its own rows. Sequences join and leave between ticks.
import type * as ort from 'onnxruntime-node';
import { rowOf, stackRows, type BatchTensor, type RowTensor } from './row-tensor.js';
import type { Sequence } from './sequence.js';
import type { RowCall } from './sequence.js';

export interface Runner {
  /**
   * Run a graph role on a padded batch. feeds always holds tokens and attention_mask [B, L];
   * the result holds logits [B, L, V] and every name in `outputs`.
   */
  run(role: string, feeds: Record<string, BatchTensor>, outputs: readonly string[]): Promise<Record<string, BatchTensor>>;
  readonly vocabSize: number;
}

export interface TickStats {
  seconds: number;
  batch: number;
}

export interface SchedulerHooks {
  /** A sequence finished (its finishReason is set); the scheduler has dropped it. */
  finished(seq: Sequence): void;
  failed(seq: Sequence, err: unknown): void;
  /** After each batched network call. */
  call?(stats: TickStats): void;
  /**
   * After each tick (its finished sequences gone) with that tick's calls, and once with none
   * when the scheduler runs out of work: what the engine pushes as its stats.
   */
  tick?(calls: readonly TickStats[]): void;
  /**
   * After each tick, before finished sequences leave: the owner may end a sequence here for a
   * reason of its own (EngineCore's entropy stop), between ticks as a cancel would.
   */
  settle?(seq: Sequence): void;
}

export class Scheduler {
  private readonly queue: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  nfeTotal = 0;
  tokensTotal = 0;

  constructor(
    private readonly runner: Runner,
    private readonly hooks: SchedulerHooks,
    private readonly maxBatch: number,
    private readonly maxQueue: number,
  ) {}

  get queued(): number { return this.queue.length; }
  get live(): number { return this.running.length; }

  /** Admit a sequence; false when the queue is full. */
  submit(seq: Sequence): boolean {
    if (this.queue.length >= this.maxQueue) return false;
    this.queue.push(seq);
    this.wake?.();
    return true;
  }

  cancel(id: number): void {
    const q = this.queue.findIndex((s) => s.id === id);
    if (q >= 0) {
      const [seq] = this.queue.splice(q, 1);
      seq!.stop('cancelled');
      this.hooks.finished(seq!);
      return;
    }
    this.running.find((s) => s.id === id)?.stop('cancelled');
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async loop(): Promise<void> {
    let busy = false;
    while (!this.closed) {
      while (this.running.length < this.maxBatch && this.queue.length > 0) this.running.push(this.queue.shift()!);
      if (this.running.length === 0) {
        // Out of work: once more, so that the queue the last tick reported does not linger.
        if (busy) this.hooks.tick?.([]);
        busy = false;
        await new Promise<void>((r) => { this.wake = r; });
        this.wake = null;
        continue;
      }
      await this.tick();
      busy = true;
      // Let cancels and new requests in between ticks.
      await new Promise((r) => setImmediate(r));
    }
  }

  private retire(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const s = this.running[i]!;
      if (!s.finishReason) this.hooks.settle?.(s);
      if (s.finishReason) {
        this.running.splice(i, 1);
        this.hooks.finished(s);
      }
    }
  }

  async tick(): Promise<void> {
    const calls = new Map<string, { seq: Sequence; call: RowCall }[]>();
    const stats: TickStats[] = [];
    for (const seq of this.running) {
      try {
        let n = seq.next();
        // Steps that need no network call (ddpm_cache with an unchanged canvas) run at once.
        for (let guard = 0; n.kind === 'local' && guard < 4096; guard++) {
          seq.advance();
          n = seq.next();
        }
        if (n.kind === 'call') {
          const key = `${n.call.role}\u0000${n.call.batchKey ?? ''}`;
          const group = calls.get(key) ?? [];
          group.push({ seq, call: n.call });
          calls.set(key, group);
        }
      } catch (err) {
        seq.stop('error');
        this.hooks.failed(seq, err);
      }
    }
    for (const group of calls.values()) {
      const s = await this.runGroup(group[0]!.call.role, group);
      if (s) stats.push(s);
    }
    this.retire();
    this.hooks.tick?.(stats);
  }

  /** One batched call; its timing, or null when it failed. */
  private async runGroup(role: string, group: { seq: Sequence; call: RowCall }[]): Promise<TickStats | null> {
    const B = group.length;
    let feeds: Record<string, BatchTensor>;
    const outputs = [...new Set(group.flatMap((g) => g.call.outputs ?? []))];
    try {
      feeds = batchFeeds(group.map((g) => g.call));
    } catch (err) {
      for (const g of group) { g.seq.stop('error'); this.hooks.failed(g.seq, err); }
      return null;
    }
    const L = feeds.tokens!.dims[1]!;
    const t0 = performance.now();
    let result: Record<string, BatchTensor>;
    try {
      result = await this.runner.run(role, feeds, outputs);
    } catch (err) {
      for (const g of group) { g.seq.stop('error'); this.hooks.failed(g.seq, err); }
      return null;
    }
    const stats = { seconds: (performance.now() - t0) / 1000, batch: B };
    this.hooks.call?.(stats);
    const V = this.runner.vocabSize;
    const logits = result.logits!.data as Float32Array;
    group.forEach((g, b) => {
      const start = (b * L + g.call.outputStart) * V;
      // A view, not a copy: each call's output is a fresh buffer and rows do not overlap, so a
      // sequence may keep its rows (ddpm_cache) or write within them (kv_cache prefix patches
      // its window's rows in place); copying them out allocated B x L x V floats per call for
      // nothing. A sequence that keeps its view (ddpm_cache) keeps only the latest call's
      // buffer alive: every live sequence takes part in every tick's call.
      const rows = logits.subarray(start, start + g.call.outputLength * V);
      let extra: Record<string, RowTensor> | undefined;
      if (g.call.outputs?.length) {
        extra = {};
        for (const name of g.call.outputs) extra[name] = rowOf(result[name]!, b);
      }
      this.nfeTotal++;
      try {
        g.seq.consume(rows, extra);
      } catch (err) {
        g.seq.stop('error');
        this.hooks.failed(g.seq, err);
      }
    });
    return stats;
  }
}

/** tokens and attention_mask [B, L] (right-padded), then each named row input stacked. */
export function batchFeeds(calls: readonly RowCall[]): Record<string, BatchTensor> {
  const feeds: Record<string, BatchTensor> = {
    tokens: stackRows(calls.map((c) => ({ type: 'int64', data: BigInt64Array.from(Array.from(c.tokens, BigInt)), dims: [c.tokens.length] }))),
    attention_mask: stackRows(calls.map((c) => ({ type: 'int64', data: new BigInt64Array(c.tokens.length).fill(1n), dims: [c.tokens.length] }))),
  };
  const names = new Set(calls.flatMap((c) => Object.keys(c.inputs ?? {})));
  for (const name of names) {
    const rows = calls.map((c) => c.inputs?.[name]);
    if (rows.some((r) => r === undefined)) throw new Error(`input '${name}' is given by some rows of a batch and not others`);
    feeds[name] = stackRows(rows as RowTensor[]);
  }
  return feeds;
}

export type { ort };
