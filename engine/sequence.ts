// A sequence is a state machine that says which network call it needs next and consumes its
// row of the result. The scheduler batches the calls of many sequences (same graph role) into
// one run; a sequence never owns batch tensors, only its own row's inputs and outputs.
import type { FinishReason, Usage } from './protocol.js';
import type { RowTensor } from './row-tensor.js';
import type { StepView } from './step-view.js';

/** One row of a network call. */
export interface RowCall {
  /** Graph role from the manifest (denoiser, block, ...). */
  role: string;
  /** Token ids of the row; rows of one batch are right-padded to the longest. */
  tokens: ArrayLike<number>;
  /** The rows' logits the sequence needs: positions [outputStart, outputStart + outputLength). */
  outputStart: number;
  outputLength: number;
  /**
   * Graph inputs besides tokens and attention_mask (sigma, latent_in, past_*), this row's part
   * only; the scheduler pads them to the batch. Names follow the manifest's graph inputs.
   */
  inputs?: Record<string, RowTensor>;
  /** Graph outputs besides the logits that the row wants back (latent_out, present_*). */
  outputs?: readonly string[];
  /** Rows batch together only when role and key match (e.g. a cache length that must agree). */
  batchKey?: string;
}

/** Where a sequence's results go (the engine process forwards them to the server). */
export interface SequenceSink {
  commit(tokens: number[]): void;
  /** The canvas after a denoising step, its marks and drafts (only when params.streamSteps). */
  step(view: StepView): void;
}

export type Next = { kind: 'call'; call: RowCall } | { kind: 'local' } | { kind: 'done' };

export interface Sequence {
  readonly id: number;
  next(): Next;
  /**
   * Logits for the requested rows, [outputLength, V], and the extra outputs the call asked
   * for: this row's slice of each, padded as the batch was (the row knows its own length).
   */
  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void;
  /** Advance one step without a network call (next() said 'local'). */
  advance(): void;
  /** Stop now (cancel); the sequence reports done with this reason. */
  stop(reason: FinishReason): void;
  readonly finishReason: FinishReason | null;
  usage(): Usage;
}
