// Block diffusion (BD3-LM): left to right, one block at a time (BlockSequence), with one graph,
// `block`, for everything. A prompt block that missed the cache is one call returning its keys
// and values; each denoising step of a block is a call against the committed blocks' keys and
// values; once the block is final, one more call on the clean block writes its own keys and
// values into the cache. The attention window is the model's length.
//
// With `recompute` the sequence keeps no cache: before every denoising call it re-encodes the
// window's clean blocks one call each (the KV-cache benchmark's baseline, same tokens per seed).
import { BlockTable } from '../block-table.js';
import type { CacheManager } from '../cache-manager.js';
import type { GenerationParams } from '../protocol.js';
import { positionsRow, type RowTensor } from '../row-tensor.js';
import type { Next, RowCall, SequenceSink } from '../sequence.js';
import { BD3LM_PAST, presentBlock } from './bd3lm-cache.js';
import { BlockSequence, type BlockModel } from './block-sequence.js';
import type { CacheLayout } from '../cache-manager.js';

export type { BlockModel };

type Phase = 'prefill' | 'denoise' | 'commit' | 'context';

export interface Bd3lmOptions {
  /** No cache: re-encode the window before every denoising call (the benchmark's baseline). */
  recompute?: boolean;
}

export class Bd3lmSequence extends BlockSequence {
  /** Recompute mode: the window's clean blocks, re-encoded before every denoising call into `fresh`. */
  private readonly context: { tokens: number[]; start: number }[] = [];
  private readonly fresh: BlockTable | null;
  private phase: Phase;

  constructor(
    id: number, prompt: number[], params: GenerationParams, blockSize: number, model: BlockModel,
    layout: CacheLayout, cache: CacheManager | null, sink: SequenceSink, opts: Bd3lmOptions = {},
  ) {
    const recompute = opts.recompute ?? false;
    super(id, prompt, params, blockSize, model, layout, recompute ? null : cache, sink);
    this.fresh = recompute ? new BlockTable(layout, this.window, null) : null;
    if (recompute) for (const p of this.pending.splice(0)) this.context.push({ tokens: p.tokens, start: p.start });
    this.phase = this.pending.length > 0 ? 'prefill' : 'denoise';
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    if (this.phase === 'prefill') {
      this.takeCachedPrefix();
      if (this.pending.length === 0) this.phase = 'denoise';
      else return { kind: 'call', call: this.call(this.pending[0]!.tokens, this.pending[0]!.start, true) };
    }
    // The block's logits depend only on its tokens and the fixed past: an unchanged block may
    // reuse them (ddpm_cache, as BD3-LM's sampler does); the recompute baseline never does.
    if (this.phase === 'denoise' && !this.fresh && this.block.reusable) return { kind: 'local' };
    if (this.fresh && this.fresh.count < this.context.length) {
      this.phase = 'context';
      const c = this.context[this.fresh.count]!;
      return { kind: 'call', call: this.call(c.tokens, c.start, true) };
    }
    return { kind: 'call', call: this.call(Array.from(this.block.tokens), this.block.start, this.phase === 'commit') };
  }

  private call(tokens: number[], start: number, wantKv: boolean): RowCall {
    const past = (this.fresh ?? this.table).past(BD3LM_PAST);
    return {
      role: 'block',
      tokens,
      outputStart: 0,
      outputLength: wantKv ? 0 : tokens.length,
      inputs: { positions: positionsRow(start, tokens.length), past_keys: past.keys, past_values: past.values, past_mask: past.mask },
      ...(wantKv ? { outputs: ['present_keys', 'present_values'] } : {}),
    };
  }

  protected take(logits: Float32Array, extra: Record<string, RowTensor> | undefined): void {
    switch (this.phase) {
      case 'denoise':
        this.denoise(logits);
        this.fresh?.clear();
        return;
      case 'context': {
        const n = this.context[this.fresh!.count]!.tokens.length;
        this.fresh!.store('', n, presentBlock(extra, n));
        break;
      }
      case 'prefill':
        this.storePrompt(presentBlock(extra, this.pending[0]!.tokens.length));
        if (this.pending.length > 0) return;
        break;
      case 'commit':
        this.commitBlock(presentBlock(extra, this.block.tokens.length));
        break;
    }
    this.phase = 'denoise';
  }

  protected blockDone(): void {
    if (!this.fresh) { this.phase = 'commit'; return; }
    this.context.push({ tokens: Array.from(this.block.tokens), start: this.block.start });
    while (this.context.length > this.window) this.context.shift();
    this.openNext();
  }
}
