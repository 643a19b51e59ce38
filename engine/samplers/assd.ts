// Any-Subset Speculative Decoding (Guo and Ermon 2025) over an any-subset autoregressive model,
// as a state machine that asks for one network row at a time: the engine's sequences and the
// exactness tests drive the same code.
//
// The order: known positions (the prompt, and any text around holes) share rank 0; the
// positions to fill are decoded in a fixed order, and each decoded position keeps its own rank
// (1, 2, ...), so every conditional is the order-causal one the network was trained on.
// One round: a draft call gives every one of the next k positions the same rank, so each is
// predicted from the decoded context alone (p_i), and k tokens are drawn independently; a
// verify call gives them consecutive ranks, so position i sees the context and drafts < i
// (q_i). Draft i is kept with probability min(1, q_i/p_i); the first rejected one is
// redrawn from max(q_i - p_i, 0), normalised, and the round ends. Draft 0's p and q are the
// same conditional, so it is always kept: a round of two calls yields at least two tokens, and
// a last lone position takes one call. Hence network calls never exceed tokens.
// In the verify row the positions after the drafts share the next rank, so they see the
// context and every draft: when all drafts stand, their logits are the next round's draft
// distributions and the round after needs no draft call (one call, at least one token).
import type { Rng } from '../rng.js';
import { distribution, sample, type Shaping } from './categorical.js';

/** One network row: tokens and ranks over the whole sequence, and the positions whose logits
 * the state needs ([outputStart, outputStart + outputLength), row-major [outputLength, V]). */
export interface AsarmRow {
  tokens: Int32Array;
  ranks: Int32Array;
  outputStart: number;
  outputLength: number;
}

export interface AssdOptions {
  /** Tokens drafted per round (1 = serial any-order decoding: one call per token). */
  k: number;
  V: number;
  shaping: Shaping;
  rng: Rng;
  /** Id fed at positions not yet decoded (hidden from every query that matters). */
  placeholder: number;
  /** An id never sampled (the [MASK] placeholder of a trained model), if any. */
  banned?: number | null;
}

/** Tokens decoded by one consume(), in decoding order. */
export interface Decoded {
  positions: number[];
  tokens: number[];
}

export class AssdState {
  readonly tokens: Int32Array;
  private readonly ranks: Int32Array;
  /** Positions still to fill, in decoding order; order[0..done) are decoded. */
  private readonly order: number[];
  private done = 0;
  private phase: 'draft' | 'verify' = 'draft';
  private kk = 0;
  private drafts: number[] = [];
  private p: Float64Array[] = [];
  nfe = 0;
  /** Drafts kept (including the always-kept first) and drafts proposed, over verify rounds. */
  accepted = 0;
  proposed = 0;

  /**
   * @param tokens the sequence; positions listed in `fill` are ignored (overwritten).
   * @param fill positions to decode, in decoding order.
   */
  constructor(tokens: ArrayLike<number>, fill: number[], private readonly o: AssdOptions) {
    if (!(o.k >= 1)) throw new Error(`speculative k must be at least 1, got ${o.k}`);
    this.tokens = Int32Array.from(tokens);
    this.ranks = new Int32Array(this.tokens.length);
    this.order = fill.slice();
    for (const pos of this.order) {
      if (pos < 0 || pos >= this.tokens.length) throw new Error(`position ${pos} is outside the sequence`);
      this.tokens[pos] = o.placeholder;
    }
  }

  get finished(): boolean {
    return this.done >= this.order.length;
  }

  /** Positions decoded so far: order[0..decodedCount) hold their final tokens. */
  get decodedCount(): number {
    return this.done;
  }

  get remaining(): number {
    return this.order.length - this.done;
  }

  /** The row the next network call needs. */
  nextRow(): AsarmRow {
    if (this.finished) throw new Error('ASSD: nothing left to decode');
    const base = this.done + 1; // rank of the next position to decode
    let drafted = 0;
    if (this.phase === 'verify') {
      for (let i = 0; i < this.kk; i++) {
        const pos = this.order[this.done + i]!;
        this.ranks[pos] = base + i;
        this.tokens[pos] = this.drafts[i]!;
      }
      drafted = this.kk;
    }
    // Undrafted positions share one rank after everything drafted: their query stream sees the
    // context and the drafts only, so on a verify call they give the next round's draft for free.
    for (let i = this.done + drafted; i < this.order.length; i++) this.ranks[this.order[i]!] = base + drafted;
    const need = drafted + Math.min(this.o.k, this.remaining - drafted);
    const span = this.order.slice(this.done, this.done + need);
    const lo = Math.min(...span);
    const hi = Math.max(...span);
    return { tokens: this.tokens.slice(), ranks: this.ranks.slice(), outputStart: lo, outputLength: hi - lo + 1 };
  }

  /** Logits for the row from nextRow(); returns the positions it decoded (possibly none). */
  consume(logits: Float32Array, row: AsarmRow): Decoded {
    this.nfe++;
    const out: Decoded = { positions: [], tokens: [] };
    if (this.phase === 'draft') {
      this.draft(logits, row, out);
      return out;
    }
    const { V, shaping, rng } = this.o;
    const at = (pos: number) => (pos - row.outputStart) * V;
    // Verify: draft 0 is kept (its p and q are one conditional); then the min(1, q/p) test.
    let kept = 1;
    this.proposed += this.kk;
    for (let i = 1; i < this.kk; i++) {
      const q = distribution(logits, at(this.order[this.done + i]!), V, shaping, this.o.banned ?? null);
      const x = this.drafts[i]!;
      const p = this.p[i]!;
      if (rng.next() * p[x]! < q[x]!) { kept++; continue; }
      this.drafts[i] = sample(residual(q, p), rng.next());
      this.accepted += kept;
      this.commit(i + 1, out);
      this.phase = 'draft';
      return out;
    }
    this.accepted += kept;
    this.commit(this.kk, out);
    this.phase = 'draft';
    // Every draft stood, so this row's later positions saw exactly the decoded context: they
    // are the next round's draft distributions, and the next call can verify straight away.
    if (!this.finished) this.draft(logits, row, out);
    return out;
  }

  /** Draws the next round's drafts from a row whose undrafted positions see only the decoded context. */
  private draft(logits: Float32Array, row: AsarmRow, out: Decoded): void {
    const { V, shaping, rng } = this.o;
    this.kk = Math.min(this.o.k, this.remaining);
    this.drafts = [];
    this.p = [];
    for (let i = 0; i < this.kk; i++) {
      const p = distribution(logits, (this.order[this.done + i]! - row.outputStart) * V, V, shaping, this.o.banned ?? null);
      this.p.push(p);
      this.drafts.push(sample(p, rng.next()));
    }
    if (this.kk === 1) {
      // A lone draft is the exact conditional: nothing to verify.
      this.commit(1, out);
      this.phase = 'draft';
    } else {
      this.phase = 'verify';
    }
  }

  private commit(n: number, out: Decoded): void {
    for (let i = 0; i < n; i++) {
      const pos = this.order[this.done]!;
      this.tokens[pos] = this.drafts[i]!;
      this.ranks[pos] = this.done + 1;
      this.done++;
      out.positions.push(pos);
      out.tokens.push(this.drafts[i]!);
    }
  }
}

/** max(q - p, 0), normalised; q itself if that is empty (only by rounding). */
export function residual(q: Float64Array, p: Float64Array): Float64Array {
  const r = new Float64Array(q.length);
  let s = 0;
  for (let v = 0; v < q.length; v++) {
    const d = q[v]! - p[v]!;
    if (d > 0) { r[v] = d; s += d; }
  }
  if (!(s > 0)) return q;
  for (let v = 0; v < q.length; v++) r[v]! /= s;
  return r;
}

/** Runs one AssdState to the end through `call` (one network row per call). */
export async function runAssd(state: AssdState, call: (row: AsarmRow) => Promise<Float32Array>): Promise<Int32Array> {
  while (!state.finished) {
    const row = state.nextRow();
    state.consume(await call(row), row);
  }
  return state.tokens;
}
