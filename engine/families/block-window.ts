// What BD3-LM and E2D2 share as block-by-block decoders: how many committed blocks fit beside
// the one being generated, the prompt cut into hashed blocks, the block being denoised
// (BlockCanvas), and which tokens of a finished block go out to the client.
import { promptContext } from '../prompt-start.js';
import { blockHash } from '../block-pool.js';
import type { GenerationParams } from '../protocol.js';
import type { Rng } from '../rng.js';
import { maskedCount } from '../samplers/masked.js';
import type { SequenceSink } from '../sequence.js';
import { maskedStepView } from '../step-view.js';
import { maskedStep, plannedSteps, type MaskedStepModel } from './masked-step.js';

/** Committed blocks that fit beside the current one in the model's length. */
export function windowBlocks(maxLength: number, blockSize: number): number {
  return Math.max(0, Math.floor((maxLength - blockSize) / blockSize));
}

/** A whole block of the prompt: its tokens, the hash naming the prefix up to it, its position. */
export interface PromptBlock {
  tokens: number[];
  hash: string;
  start: number;
}

/**
 * A prompt as a block decoder starts from it. Every whole block is hashed along the prefix
 * chain (`lastHash` names the whole prefix, so the next block's hash follows it), but only the
 * last `window` blocks, those that fit beside the block being generated, are returned to be
 * found in the pool or computed; the remainder (`head`, at `headStart`) opens the first block.
 * The prompt as every family reads it (promptContext: an empty one starts after [EOS]).
 */
export function promptBlocks(prompt: readonly number[], eosId: number | null, blockSize: number, window: number): {
  inWindow: PromptBlock[]; lastHash: string | null; head: number[]; headStart: number;
} {
  const all = promptContext(prompt, eosId);
  const whole = Math.floor(all.length / blockSize);
  const inWindow: PromptBlock[] = [];
  let prev: string | null = null;
  for (let b = 0; b < whole; b++) {
    const tokens = all.slice(b * blockSize, (b + 1) * blockSize);
    prev = blockHash(prev, tokens);
    if (b >= whole - window) inWindow.push({ tokens, hash: prev, start: b * blockSize });
  }
  return { inWindow, lastHash: prev, head: all.slice(whole * blockSize), headStart: whole * blockSize };
}

/**
 * The finished block's new tokens up to (not including) the first stop token and at most
 * `room` of them; `stopped` says whether a stop token cut it.
 */
export function finalTokens(block: Int32Array, stops: Set<number>, room: number): { fresh: number[]; stopped: boolean } {
  const fresh: number[] = [];
  for (const tok of block) {
    if (stops.has(tok)) return { fresh, stopped: true };
    if (fresh.length >= room) break;
    fresh.push(tok);
  }
  return { fresh, stopped: false };
}

/**
 * The block being generated: its tokens (the prompt's remainder at its head, `lead` of them,
 * then [MASK] positions), where it starts, and its denoising schedule. A step with the
 * request's masked sampler; after a step that changed no token, the block and its past are the
 * same as before, so under `ddpm_cache` its last logits stand in for a network call.
 */
export class BlockCanvas {
  tokens = new Int32Array(0);
  /** Clean prompt tokens at the head (only the first block has any). */
  lead = 0;
  /** Absolute position of tokens[0]. */
  start = 0;
  /** Denoising steps so far over the whole sequence (the `step` frames' counter). */
  stepCount = 0;
  private step = 0;
  private steps = 0;
  private lastLogits: Float32Array | null = null;
  private changed = true;

  constructor(
    private readonly size: number,
    private readonly params: GenerationParams,
    private readonly model: MaskedStepModel,
    private readonly rng: Rng,
  ) {}

  open(head: readonly number[], start: number): void {
    this.tokens = new Int32Array(this.size).fill(this.model.maskId);
    this.tokens.set(head);
    this.lead = head.length;
    this.start = start;
    this.step = 0;
    this.lastLogits = null;
    this.changed = true;
    this.steps = plannedSteps(this.params, this.size - head.length);
  }

  /** ddpm_cache after a step that changed nothing: the last logits are still the block's. */
  get reusable(): boolean {
    return this.params.sampler === 'ddpm_cache' && !this.changed && this.lastLogits !== null;
  }

  /**
   * One step on the network's logits (or, with none, the last ones again); streams the canvas
   * when the request asked for steps (`emitted` tokens precede it). True when the block is final.
   */
  denoise(logits: Float32Array | null, sink: SequenceSink, emitted: number): boolean {
    const l = logits ?? this.lastLogits;
    if (!l) throw new Error('a local step with no logits to reuse');
    this.lastLogits = l;
    this.changed = maskedStep(this.tokens, l, this.step, Math.max(this.steps, 1), this.params, this.model, this.rng) > 0;
    this.step++;
    this.stepCount++;
    // SUBS: an unmasked token stays what it is, so every decoded position is final.
    if (this.params.streamSteps) {
      const drafts = this.params.streamDrafts ? { logits: l, V: this.model.vocabSize, rowStart: this.lead } : null;
      sink.step(maskedStepView(this.stepCount, emitted, this.tokens.subarray(this.lead), this.model.maskId, true, drafts));
    }
    return maskedCount(this.tokens, this.model.maskId) === 0;
  }

  /** The finished block's tokens for the client (see finalTokens). */
  final(stops: Set<number>, room: number): { fresh: number[]; stopped: boolean } {
    return finalTokens(this.tokens.subarray(this.lead), stops, room);
  }
}
