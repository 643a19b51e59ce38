// Admission control. The server lets in at most `limit` sequences at once (decoding plus waiting
// in the engine's queue); a request beyond that is refused at once (HTTP 429 with Retry-After,
// a WebSocket `error` frame) instead of waiting without bound. A request is admitted whole or
// not at all, so once admitted none of its sequences is ever dropped for lack of room.
//
// Retry-After comes from how fast slots have been freeing up lately: the time until as many
// sequences finish as the refused request would need, at the recent completion rate.

/** A place held by one sequence; release() gives it back (later calls do nothing). */
export interface Slot {
  release(): void;
}

/** Completions older than this no longer inform Retry-After. */
const WINDOW_MS = 10_000;
/** Retry-After bounds, seconds: at least 1 (the header is whole seconds), at most a minute. */
const MIN_RETRY_S = 1;
const MAX_RETRY_S = 60;

export class Admission {
  private held = 0;
  /** When recent sequences finished (performance.now() ms), oldest first. */
  private finished: number[] = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`admission limit must be at least 1, got ${limit}`);
  }

  /** Sequences admitted and not yet finished. */
  get inFlight(): number {
    return this.held;
  }

  /** Places for `n` sequences, all or none (null: refuse the request). */
  tryAdmit(n: number): Slot[] | null {
    if (this.held + n > this.limit) return null;
    this.held += n;
    return Array.from({ length: n }, () => {
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          this.held--;
          this.finished.push(performance.now());
        },
      };
    });
  }

  /** Whole seconds a refused client asking for `n` sequences should wait before retrying. */
  retryAfterSeconds(n = 1, now = performance.now()): number {
    while (this.finished.length > 0 && now - this.finished[0]! > WINDOW_MS) this.finished.shift();
    const needed = Math.max(1, this.held + n - this.limit);
    if (this.finished.length === 0) return Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, WINDOW_MS / 1000));
    const span = Math.max(1, now - this.finished[0]!) / 1000;
    const perSecond = this.finished.length / span;
    return Math.min(MAX_RETRY_S, Math.max(MIN_RETRY_S, Math.ceil(needed / perSecond)));
  }
}
