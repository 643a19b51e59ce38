// E2D2 decoding: left to right, one block at a time (BlockSequence), with the work split between
// two graphs. The encoder reads clean tokens once: the prompt's blocks that missed the cache in
// one call (block-causal inside it, against the hits as their past), then each finished block.
// Every denoising step of a block runs only the light decoder over the block's few tokens
// against the cached encoder context. The window is the model's length.
//
// With `recompute` the sequence keeps no encoder state: before every decoder step it encodes its
// whole context again in one call. Same tokens for the same seed (within the window), many more
// encoder FLOPs: the baseline the cache is measured against.
import { BlockTable, type PastTensors } from '../block-table.js';
import type { CacheManager } from '../cache-manager.js';
import type { GenerationParams } from '../protocol.js';
import { positionsRow, type RowTensor } from '../row-tensor.js';
import type { Next, RowCall, SequenceSink } from '../sequence.js';
import { BlockSequence, type BlockModel } from './block-sequence.js';
import { DECODER_CONTEXT, ENCODER_OUTPUTS, ENCODER_PAST, e2d2Layout, encodedBlock, type E2d2Shape } from './e2d2-cache.js';

export interface E2d2Model extends BlockModel, E2d2Shape {}

export interface E2d2Options {
  /** Re-encode the whole context before every decoder step instead of caching it. */
  recompute?: boolean;
}

type Phase = 'prefill' | 'denoise' | 'encode' | 'commit';

export class E2d2Sequence extends BlockSequence {
  private readonly noPast: PastTensors;
  private readonly recompute: boolean;
  /** Clean tokens in the window, oldest first, and the absolute position of the first. */
  private context: number[];
  private contextStart: number;
  private phase: Phase;

  constructor(
    id: number, prompt: number[], params: GenerationParams, blockSize: number, model: E2d2Model,
    cache: CacheManager | null, sink: SequenceSink, opts: E2d2Options = {},
  ) {
    const recompute = opts.recompute ?? false;
    const layout = e2d2Layout(model);
    super(id, prompt, params, blockSize, model, layout, recompute ? null : cache, sink);
    this.recompute = recompute;
    this.noPast = new BlockTable(layout, 0, null).past(ENCODER_PAST);
    this.context = this.promptWindow.flatMap((b) => b.tokens);
    this.contextStart = this.promptWindow[0]?.start ?? this.block.start;
    // The recompute baseline encodes its whole context before each step instead.
    if (recompute) this.pending.length = 0;
    this.phase = this.pending.length > 0 ? 'prefill' : recompute && this.context.length > 0 ? 'encode' : 'denoise';
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    // Same canvas, same context: the network would return the same logits.
    if (this.phase === 'denoise' && this.block.reusable) return { kind: 'local' };
    if (this.phase === 'prefill') {
      // The hits are the rest's past.
      this.takeCachedPrefix();
      if (this.pending.length === 0) this.phase = 'denoise';
    }
    switch (this.phase) {
      case 'prefill': return { kind: 'call', call: this.encoderCall(this.pending.flatMap((p) => p.tokens), this.pending[0]!.start) };
      case 'encode': return { kind: 'call', call: this.encoderCall(this.context, this.contextStart) };
      case 'commit': return { kind: 'call', call: this.encoderCall(Array.from(this.block.tokens), this.block.start) };
      case 'denoise': return { kind: 'call', call: this.decoderCall() };
    }
  }

  private encoderCall(tokens: number[], start: number): RowCall {
    // The recompute baseline encodes its whole context from scratch, against no past.
    const past = this.phase === 'encode' ? this.noPast : this.table.past(ENCODER_PAST);
    return {
      role: 'encoder', tokens, outputStart: 0, outputLength: 0,
      inputs: {
        positions: positionsRow(start, tokens.length),
        block_size: { type: 'int64', data: BigInt64Array.of(BigInt(this.blockSize)), dims: [] },
        past_keys: past.keys, past_values: past.values, past_mask: past.mask,
      },
      outputs: ENCODER_OUTPUTS,
    };
  }

  private decoderCall(): RowCall {
    const ctx = this.table.past(DECODER_CONTEXT);
    return {
      role: 'decoder', tokens: Array.from(this.block.tokens), outputStart: 0, outputLength: this.block.tokens.length,
      inputs: {
        positions: positionsRow(this.block.start, this.block.tokens.length),
        context_keys: ctx.keys, context_values: ctx.values, context_mask: ctx.mask,
      },
    };
  }

  protected take(logits: Float32Array, extra: Record<string, RowTensor> | undefined): void {
    switch (this.phase) {
      case 'denoise':
        this.denoise(logits);
        return;
      case 'prefill':
        // One cache entry per block, so that the window drops blocks one at a time.
        for (let a = 0; this.pending.length > 0; a += this.blockSize) this.storePrompt(encodedBlock(extra, a, a + this.pending[0]!.tokens.length));
        break;
      case 'encode':
        this.table.clear();
        for (let a = 0; a < this.context.length; a += this.blockSize) {
          const b = Math.min(this.context.length, a + this.blockSize);
          this.table.store('', b - a, encodedBlock(extra, a, b));
        }
        break;
      case 'commit':
        this.commitBlock(encodedBlock(extra, 0, this.block.tokens.length));
        break;
    }
    this.phase = 'denoise';
  }

  protected override denoise(logits: Float32Array | null): void {
    super.denoise(logits);
    if (this.recompute && !this.block.reusable) this.phase = 'encode';
  }

  protected blockDone(): void {
    for (const t of this.block.tokens) this.context.push(t);
    const over = this.context.length - this.window * this.blockSize;
    if (over > 0) { this.context.splice(0, over); this.contextStart += over; }
    if (this.recompute) this.openNext();
    this.phase = this.recompute ? 'encode' : 'commit';
  }
}
