// Graceful drain, what SIGTERM starts (Kubernetes sends it on every rollout and scale-down).
// From the first moment the server admits nothing new (503 `server_draining` + Retry-After, a
// WebSocket `error` frame with that code) and /health answers 503, so readiness fails and load
// balancers move on; work already admitted runs to its end. At the deadline (--drain-seconds)
// what still runs is ended: its sequences are cancelled and the client is told why
// (finish_reason `abort`, as vLLM names an aborted request, and an error `drain_timeout`).
//
// Work is counted per client-visible unit (one HTTP generation request, one WebSocket
// generation) from its start until its answer is written, not per engine sequence: a sequence
// that is done in the engine may still be detokenizing its tail, and closing the server then
// would lose the answer.
import { ApiError } from './errors.js';

/** One unit of work in flight. */
export interface Held {
  /** Ends the work now (cancel its sequences); set once there is something to cancel. */
  onDeadline: (() => void) | null;
  /** True once the drain's deadline ended this work: its answer must say so. */
  readonly cutShort: boolean;
  /** The work has answered its client (later calls do nothing). */
  release(): void;
}

export interface DrainReport {
  /** Work that finished by itself during the drain. */
  finished: number;
  /** Work the deadline ended. */
  cutShort: number;
  /** Work still unanswered when the drain gave up waiting (e.g. a client still sending its body). */
  abandoned: number;
}

/** After the deadline, how long ended work may take to answer before the server closes anyway. */
const ANSWER_GRACE_MS = 3000;
/** Retry-After of a refusal: the client should try again at once, on another replica. */
const RETRY_AFTER_S = 1;

interface Unit extends Held {
  cutShort: boolean;
}

export class Drain {
  private readonly held = new Set<Unit>();
  private idleWaiters: (() => void)[] = [];
  private startedAt: number | null = null;
  private seconds = 0;
  private releasedDuring = 0;

  get draining(): boolean {
    return this.startedAt !== null;
  }

  /** Units of work in flight. */
  get inFlight(): number {
    return this.held.size;
  }

  hold(): Held {
    const unit: Unit = {
      onDeadline: null,
      cutShort: false,
      release: () => {
        if (!this.held.delete(unit)) return;
        if (this.draining && !unit.cutShort) this.releasedDuring++;
        if (this.held.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      },
    };
    this.held.add(unit);
    return unit;
  }

  /** What a request that arrives during the drain gets. */
  refusal(): ApiError {
    const e = new ApiError(503, `the server is shutting down and admits no new requests; retry in ${RETRY_AFTER_S} s (another replica will answer)`, 'server_error', null, 'server_draining');
    e.retryAfter = RETRY_AFTER_S;
    return e;
  }

  /** What work ended by the deadline reports (SSE error event, WebSocket error frame, JSON 503). */
  deadlineError(): ApiError {
    const e = new ApiError(503, `the server shut down before this generation finished (drain of ${this.seconds} s elapsed); retry it`, 'server_error', null, 'drain_timeout');
    e.retryAfter = RETRY_AFTER_S;
    return e;
  }

  /**
   * Stop admitting, wait up to `seconds` for the work in flight, then end what is left and wait
   * (briefly) for it to answer. Resolves when nothing is in flight or the wait gave up.
   */
  async run(seconds: number): Promise<DrainReport> {
    if (this.startedAt === null) {
      this.startedAt = performance.now();
      this.seconds = seconds;
    }
    await this.idleWithin(seconds * 1000);
    let cutShort = 0;
    for (const u of this.held) {
      if (u.onDeadline === null) continue;
      u.cutShort = true;
      cutShort++;
      u.onDeadline();
    }
    if (cutShort > 0) await this.idleWithin(ANSWER_GRACE_MS);
    return { finished: this.releasedDuring, cutShort, abandoned: this.held.size };
  }

  private idleWithin(ms: number): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve();
      }, ms);
      this.idleWaiters.push(done);
    });
  }
}
