// BD3-LM's variable-length rule against degenerate text: once the last `window` generated
// tokens have a unigram entropy (nats, over their token counts) below `threshold`, the sequence
// ends. BD3-LM samples with threshold 4 over the last 256 tokens; normal English over 256 GPT-2
// tokens sits near 4.5-5 nats, a loop of a few tokens far below 4. The engine applies it to every
// family (commits are tokens whatever the family); block families turn it on by default.
//
// A streaming server cannot take back what it sent, so unlike the offline sampler (which cuts
// the degenerate window off the sample) it stops without truncating, and says why.

export class EntropyStop {
  private readonly ring: Int32Array;
  private readonly counts = new Map<number, number>();
  private seen = 0;

  constructor(
    private readonly threshold: number,
    readonly window: number,
  ) {
    if (!(window >= 2)) throw new Error(`entropy window must be at least 2 tokens, got ${window}`);
    this.ring = new Int32Array(window);
  }

  /** Take newly committed tokens; true once the window is full and its entropy is below the threshold. */
  push(tokens: readonly number[]): boolean {
    for (const t of tokens) {
      const slot = this.seen % this.window;
      if (this.seen >= this.window) {
        const old = this.ring[slot]!;
        const n = this.counts.get(old)! - 1;
        if (n === 0) this.counts.delete(old);
        else this.counts.set(old, n);
      }
      this.ring[slot] = t;
      this.counts.set(t, (this.counts.get(t) ?? 0) + 1);
      this.seen++;
    }
    return this.seen >= this.window && this.entropy() < this.threshold;
  }

  /** Unigram entropy (nats) of the tokens in the window so far. */
  entropy(): number {
    const n = Math.min(this.seen, this.window);
    let h = 0;
    for (const c of this.counts.values()) {
      const p = c / n;
      h -= p * Math.log(p);
    }
    return h;
  }
}
