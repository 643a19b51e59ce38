// Block diffusion (BD3-LM): left to right, one block at a time. The prompt's whole blocks go
// into the shared block cache first (reused when another request already encoded the same
// prefix); the prompt's remainder opens the first block, whose other positions start [MASK]
// and are denoised by a masked sampler (steps per block) against the committed blocks' keys and
// values; the finished block streams at once, then one more call on the clean block writes its
// own keys and values into the cache, and the next block starts. The attention window is the
// model's length: the oldest blocks leave it (their handles are released) as new ones commit.
import { blockHash, concatBlocks, takeBlock, type BlockCache, type CachedBlock } from '../block-cache.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import type { RowTensor } from '../row-tensor.js';
import type { Next, RowCall, Sequence, SequenceSink } from '../sequence.js';
import { BlockCanvas, promptBlocks, windowBlocks, type PromptBlock } from './block-window.js';
import { stopTokens } from './stop-tokens.js';

export interface BlockModel {
  vocabSize: number;
  maxLength: number;
  maskId: number;
  eosId: number | null;
  eps: number;
}

type Phase = 'prefill' | 'denoise' | 'commit' | 'context';

/**
 * Which graph denoises a block and which writes a clean block's cache entries: BD3-LM uses its
 * one `block` graph for both; E2D2 denoises with its light `decoder` and commits with its
 * `encoder` (whose entries hold the decoder layers' keys/values of the encoder states).
 */
export interface BlockRoles {
  denoise: string;
  encode: string;
}

export const BD3LM_ROLES: BlockRoles = { denoise: 'block', encode: 'block' };

export interface BlockSequenceOptions {
  roles?: BlockRoles;
  /** No cache: re-encode the window before every denoising call (the benchmark's baseline). */
  recompute?: boolean;
}

export class Bd3lmSequence implements Sequence {
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly generated: number[] = [];
  /** Committed blocks inside the attention window, oldest first: handles into the cache. */
  private readonly held: CachedBlock[] = [];
  private lastHash: string | null = null;
  /** Prompt blocks still to be found in or written to the cache, with their hashes. */
  private readonly pending: PromptBlock[];
  /** Recompute mode (no cache; the baseline of the KV-cache benchmark): the window's clean
   * blocks, re-encoded before every denoising call into `fresh`. */
  private readonly context: { tokens: number[]; start: number }[] = [];
  private fresh: CachedBlock[] = [];
  private phase: Phase = 'prefill';
  private readonly block: BlockCanvas;
  private past: { keys: RowTensor; values: RowTensor; mask: RowTensor } | null = null;
  private nfe = 0;
  private cachedTokens = 0;
  private readonly roles: BlockRoles;
  private readonly recompute: boolean;
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: number,
    private readonly prompt: number[],
    private readonly params: GenerationParams,
    private readonly blockSize: number,
    private readonly model: BlockModel,
    private readonly cache: BlockCache,
    private readonly sink: SequenceSink,
    opts: BlockSequenceOptions = {},
  ) {
    this.roles = opts.roles ?? BD3LM_ROLES;
    this.recompute = opts.recompute ?? false;
    this.rng = new Rng(params.seed);
    this.block = new BlockCanvas(blockSize, params, model, this.rng);
    this.stops = stopTokens(params, model.eosId);
    const p = promptBlocks(prompt, model.eosId, blockSize, this.windowBlocks());
    this.pending = p.inWindow;
    this.lastHash = p.lastHash;
    this.block.open(p.head, p.headStart);
    this.phase = this.pending.length > 0 ? 'prefill' : 'denoise';
    if (this.recompute) {
      for (const p of this.pending.splice(0)) this.context.push({ tokens: p.tokens, start: p.start });
      this.phase = 'denoise';
    }
  }

  private windowBlocks(): number {
    return windowBlocks(this.model.maxLength, this.blockSize);
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    if (this.phase === 'prefill') {
      // Blocks another request already wrote cost nothing.
      while (this.pending.length > 0) {
        const hit = this.cache.acquire(this.pending[0]!.hash);
        if (!hit) break;
        this.pending.shift();
        this.hold(hit);
        this.cachedTokens += hit.length;
      }
      if (this.pending.length === 0) this.phase = 'denoise';
      else {
        const p = this.pending[0]!;
        return { kind: 'call', call: this.call(p.tokens, p.start, true) };
      }
    }
    // The block's logits depend only on its tokens and the fixed past: an unchanged block may
    // reuse them (ddpm_cache, as BD3-LM's sampler does); the recompute baseline never does.
    if (this.phase === 'denoise' && !this.recompute && this.block.reusable) return { kind: 'local' };
    if (this.recompute && this.fresh.length < this.context.length) {
      this.phase = 'context';
      const c = this.context[this.fresh.length]!;
      return { kind: 'call', call: this.call(c.tokens, c.start, true) };
    }
    return { kind: 'call', call: this.call(Array.from(this.block.tokens), this.block.start, this.phase === 'commit') };
  }

  private call(tokens: number[], start: number, wantKv: boolean): RowCall {
    const past = this.pastTensors();
    const positions = BigInt64Array.from({ length: tokens.length }, (_, i) => BigInt(start + i));
    return {
      role: wantKv ? this.roles.encode : this.roles.denoise,
      tokens,
      outputStart: 0,
      outputLength: wantKv ? 0 : tokens.length,
      inputs: { positions: { type: 'int64', data: positions, dims: [tokens.length] }, past_keys: past.keys, past_values: past.values, past_mask: past.mask },
      ...(wantKv ? { outputs: ['present_keys', 'present_values'] } : {}),
    };
  }

  private pastTensors(): { keys: RowTensor; values: RowTensor; mask: RowTensor } {
    if (this.past) return this.past;
    const shape = this.cache.shape;
    // At least one slot: an empty past is one masked dummy slot, not a zero-sized axis.
    const blocks = this.recompute ? this.fresh : this.held;
    const k = concatBlocks(blocks, shape, 'keys', 1);
    const v = concatBlocks(blocks, shape, 'values', 1);
    const real = blocks.reduce((n, b) => n + b.length, 0);
    const mask = new BigInt64Array(k.length);
    mask.fill(1n, 0, real);
    const dims = [shape.nLayers, shape.nHeads, k.length, shape.headDim];
    this.past = {
      keys: { type: 'float32', data: k.data, dims },
      values: { type: 'float32', data: v.data, dims: [...dims] },
      mask: { type: 'int64', data: mask, dims: [k.length] },
    };
    return this.past;
  }

  private hold(b: CachedBlock): void {
    this.held.push(b);
    while (this.held.length > this.windowBlocks()) this.cache.release(this.held.shift()!);
    this.past = null;
  }

  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    this.nfe++;
    if (this.finishReason) return; // cancelled while the call ran
    if (this.phase === 'denoise') {
      this.denoise(logits);
      if (this.recompute) { this.fresh = []; this.past = null; }
      return;
    }
    const k = extra?.present_keys;
    const v = extra?.present_values;
    if (!k || !v) throw new Error('the block graph returned no present_keys / present_values');
    if (this.phase === 'context') {
      const n = this.context[this.fresh.length]!.tokens.length;
      const keys = takeBlock(k.data as Float32Array, k.dims, n);
      this.fresh.push({ hash: '', length: n, keys, values: takeBlock(v.data as Float32Array, v.dims, n), bytes: 0, refs: 0 });
      this.past = null;
      this.phase = 'denoise';
      return;
    }
    const tokens = this.phase === 'prefill' ? this.pending[0]!.tokens : Array.from(this.block.tokens);
    const hash = this.phase === 'prefill' ? this.pending[0]!.hash : blockHash(this.lastHash, tokens);
    this.store(hash, tokens.length, takeBlock(k.data as Float32Array, k.dims, tokens.length), takeBlock(v.data as Float32Array, v.dims, tokens.length));
    if (this.phase === 'prefill') {
      this.pending.shift();
      if (this.pending.length === 0) this.phase = 'denoise';
      return;
    }
    this.lastHash = hash;
    this.block.open([], this.block.start + this.blockSize);
    this.phase = 'denoise';
  }

  /** Into the pool; when the budget is full of referenced blocks, give up our own oldest first. */
  private store(hash: string, length: number, keys: Float32Array, values: Float32Array): void {
    for (;;) {
      const b = this.cache.insert(hash, length, keys, values);
      if (b) { this.hold(b); return; }
      if (this.held.length === 0) throw new Error(`the block cache budget (${this.cache.budgetBytes} bytes) cannot hold one block; raise --cache-mb`);
      this.cache.release(this.held.shift()!);
      this.past = null;
    }
  }

  advance(): void {
    this.denoise(null);
  }

  private denoise(logits: Float32Array | null): void {
    if (this.block.denoise(logits, this.sink, this.generated.length)) this.finishBlock();
  }

  /** The block is final: stream it, stop if it says so, else commit its keys/values next. */
  private finishBlock(): void {
    const { fresh, stopped } = this.block.final(this.stops, this.params.maxTokens - this.generated.length);
    for (const t of fresh) this.generated.push(t);
    if (fresh.length > 0) this.sink.commit(fresh);
    if (stopped) this.finish('stop');
    else if (this.generated.length >= this.params.maxTokens) this.finish('length');
    else if (this.recompute) {
      this.context.push({ tokens: Array.from(this.block.tokens), start: this.block.start });
      while (this.context.length > this.windowBlocks()) this.context.shift();
      this.block.open([], this.block.start + this.blockSize);
    } else this.phase = 'commit';
  }

  private finish(reason: FinishReason): void {
    if (this.finishReason) return;
    this.finishReason = reason;
    while (this.held.length > 0) this.cache.release(this.held.pop()!);
    this.past = null;
  }

  stop(reason: FinishReason): void {
    this.finish(reason);
  }

  usage(): Usage {
    return { promptTokens: this.prompt.length, completionTokens: this.generated.length, nfe: this.nfe, cachedTokens: this.cachedTokens };
  }
}
