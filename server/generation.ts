// One sequence as the server sees it: token commits from the engine in, stable text out.
// Shared by the HTTP and WebSocket front ends. The engine's callbacks are synchronous but
// detokenizing is not, so every event goes through one promise chain and reaches the front
// end in order. A stop string that matches cancels the engine sequence at once, so the
// engine stops spending network calls on text nobody will see.
import type { Engine, SequenceHandle } from '../engine/api.js';
import type { ErrorMsg, FinishReason, GenerationParams, StepMsg, Usage } from '../engine/protocol.js';
import { IncrementalDetokenizer } from '../tokenizer/detokenizer.js';
import { StopMatcher } from '../tokenizer/stop.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { Slot } from './admission.js';
import type { Metrics } from './metrics.js';

export interface GenerationListener {
  /** New final text and the tokens whose commit produced it (text may be '' mid-character). */
  delta(text: string, tokens: number[]): void;
  /** A canvas; may return a promise (e.g. to decode the canvas) that later events wait for. */
  step?(msg: StepMsg): void | Promise<void>;
  /**
   * Exactly once, last. `error` is set when reason is 'error'. `stopReason` says what ended a
   * 'stop' other than EOS (as vLLM's stop_reason): the stop string that matched, or
   * 'low_entropy' (the min_entropy rule); null otherwise.
   */
  done(reason: FinishReason, usage: Usage, error: ErrorMsg | undefined, stopReason: string | null): void;
}

export interface GenerationSpec {
  prompt: number[];
  params: GenerationParams;
  stop: string[];
}

export class Generation {
  private handle: SequenceHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopMatcher;
  private stoppedByString = false;
  private cancelled = false;
  private finished = false;
  private error: ErrorMsg | undefined;

  constructor(
    private readonly engine: Engine,
    tokenizer: TextTokenizer,
    private readonly spec: GenerationSpec,
    private readonly listener: GenerationListener,
    private readonly metrics: Metrics,
    /** The admission place this sequence holds until it is done (or fails to start). */
    private readonly slot?: Slot,
  ) {
    this.detok = new IncrementalDetokenizer(tokenizer);
    this.stops = new StopMatcher(spec.stop);
  }

  /** Hand the sequence to the engine; throws what engine.generate throws (e.g. queue full). */
  start(): void {
    try {
      this.handle = this.engine.generate(this.spec.prompt, this.spec.params, this.engineEvents());
    } catch (err) {
      this.slot?.release();
      throw err;
    }
    this.metrics.liveSequences.inc();
    if (this.cancelled) this.handle.cancel();
  }

  private engineEvents(): Parameters<Engine['generate']>[2] {
    return {
      commit: (tokens) => {
        this.metrics.generatedTokens.inc(tokens.length);
        this.enqueue(() => this.onCommit(tokens));
      },
      step: this.spec.params.streamSteps
        ? (msg) => this.enqueue(() => (this.stoppedByString ? undefined : this.listener.step?.(msg)))
        : undefined,
      error: (msg) => {
        this.error = msg;
      },
      done: (msg) => {
        this.metrics.liveSequences.dec();
        this.slot?.release();
        this.enqueue(() => this.onDone(msg.reason, msg.usage, msg.stopReason ?? null));
      },
    };
  }

  /** For a generation that will never start (another of its request failed to): free its slot. */
  abandon(): void {
    if (this.handle === null) this.slot?.release();
  }

  /** Stop decoding (client cancelled or went away); `done` follows with 'cancelled'. */
  cancel(): void {
    if (this.cancelled || this.finished) return;
    this.cancelled = true;
    this.handle?.cancel();
  }

  private enqueue(fn: () => void | Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      this.error ??= { type: 'error', id: this.handle?.id ?? null, code: 'internal_error', message: String(err) };
      this.handle?.cancel();
    });
  }

  private async onCommit(tokens: number[]): Promise<void> {
    if (this.stoppedByString) return;
    const text = await this.detok.push(tokens);
    const r = this.stops.push(text);
    if (r.stopped) {
      this.stoppedByString = true;
      this.handle?.cancel();
    }
    this.listener.delta(r.text, tokens);
  }

  private async onDone(reason: FinishReason, usage: Usage, engineStopReason: string | null): Promise<void> {
    this.finished = true;
    if (!this.stoppedByString) {
      const r = this.stops.push(await this.detok.flush());
      if (r.stopped) this.stoppedByString = true;
      const tail = r.text + (r.stopped ? '' : this.stops.flush());
      if (tail !== '') this.listener.delta(tail, []);
    }
    let final: FinishReason = reason;
    if (this.stoppedByString) final = 'stop';
    else if (this.error !== undefined) final = 'error';
    const stopReason = this.stoppedByString ? this.stops.matched : final === 'stop' ? engineStopReason : null;
    this.listener.done(final, usage, final === 'error' ? this.error : undefined, stopReason);
  }
}
