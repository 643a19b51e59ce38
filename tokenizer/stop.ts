// Stop strings over streamed text. A stop string may span several deltas (and several
// tokens), so text that could still turn out to be the start of a stop string is held back
// until the next delta settles it; on a match, the text is cut just before the stop string.

export interface StopResult {
  /** Text safe to send now. */
  text: string;
  /** A stop string matched: `text` ends where it began, and nothing more will come. */
  stopped: boolean;
}

export class StopMatcher {
  private held = '';
  private done = false;
  /** The stop string that matched (the earliest in the text), once one has. */
  matched: string | null = null;

  constructor(private readonly stops: readonly string[]) {
    if (stops.some((s) => s.length === 0)) throw new Error('stop strings must not be empty');
  }

  push(delta: string): StopResult {
    if (this.done) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const buf = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i !== -1 && (cut === -1 || i < cut)) { cut = i; this.matched = s; }
    }
    if (cut !== -1) {
      this.done = true;
      this.held = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    const keep = this.heldSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** The stream ended without a match: the held text was ordinary text after all. */
  flush(): string {
    const out = this.done ? '' : this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private heldSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      const max = Math.min(s.length - 1, buf.length);
      for (let n = max; n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
