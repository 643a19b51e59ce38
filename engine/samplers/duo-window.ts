// The window a whole-sequence model (Duo, MDLM with ReMDM, LDDM) decodes at a time: clean
// context (prompt and what was committed, newest last) followed by a canvas of new tokens,
// together within the model's max_length. Duo and ReMDM may change any canvas token until the
// window's last step, so a window commits all at once; then the context slides and the next
// window opens, until max_tokens or a stop token.

export interface WindowOptions {
  maxLength: number;
  maxTokens: number;
  /** Canvas length per window; default: as long as fits. */
  blockSize?: number;
  stopTokenIds: readonly number[];
  ignoreEos: boolean;
}

export interface OpenWindow {
  /** Context tokens, then canvasLength new positions, make the network's row. */
  context: number[];
  canvasLength: number;
  /** Positions dropped from the front of the previous row (for state kept per position). */
  dropped: number;
}

export class DecodeWindow {
  readonly committed: number[] = [];
  finish: 'stop' | 'length' | null = null;
  private rowLength = 0;
  private rowStart = 0;

  constructor(
    private readonly prompt: readonly number[],
    private readonly opt: WindowOptions,
  ) {
    if (opt.maxTokens < 1) throw new RangeError('maxTokens must be at least 1');
  }

  /** The next window, or null when the sequence is finished. */
  open(): OpenWindow | null {
    if (this.finish) return null;
    const { maxLength, maxTokens, blockSize } = this.opt;
    const all = this.prompt.length + this.committed.length;
    const want = Math.min(maxTokens - this.committed.length, blockSize ?? Number.MAX_SAFE_INTEGER);
    // The canvas gets at least half the row when the context is long; the context the rest.
    const canvasLength = Math.max(1, Math.min(want, Math.max(maxLength - all, maxLength >> 1)));
    const ctxLength = Math.min(all, maxLength - canvasLength);
    const start = all - ctxLength;
    const dropped = this.rowLength === 0 ? 0 : start - this.rowStart;
    const src = [...this.prompt, ...this.committed];
    this.rowStart = start;
    this.rowLength = ctxLength + canvasLength;
    return { context: src.slice(start), canvasLength, dropped };
  }

  /** Commit a finished canvas; returns the tokens that become output (cut at a stop token or max_tokens). */
  commit(canvas: ArrayLike<number>): number[] {
    const out: number[] = [];
    const stops = this.opt.ignoreEos ? [] : this.opt.stopTokenIds;
    for (let i = 0; i < canvas.length; i++) {
      const t = canvas[i]!;
      if (stops.includes(t)) {
        this.finish = 'stop';
        break;
      }
      out.push(t);
      if (this.committed.length + out.length >= this.opt.maxTokens) {
        this.finish = 'length';
        break;
      }
    }
    this.committed.push(...out);
    return out;
  }
}
