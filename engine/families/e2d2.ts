// E2D2 decoding: left to right, one block at a time, with the work split between two graphs.
// The encoder reads clean tokens once: the prompt's whole blocks in one call (block-causal
// inside it), then each finished block. Its state goes into the model's shared block pool, keyed
// by the prefix hash as BD3-LM's blocks are: prompt blocks another request already encoded are
// acquired instead of encoded (the rest are encoded in one call with the hits as their past). Every
// denoising step of a block runs only the light decoder over the block's few tokens against
// that cached context. The prompt's remainder opens the first block as clean tokens; the rest of
// a block starts [MASK] and is denoised by a masked sampler in `steps` steps, streamed as soon
// as it is final, then encoded. The window is the model's length: the oldest blocks leave the
// cache as new ones come in.
//
// With `recompute` the sequence keeps no encoder state: before every decoder step it encodes its
// whole context again in one call. Same tokens for the same seed (within the window), many more
// encoder FLOPs: the baseline the cache is measured against.
import { blockHash } from '../block-cache.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import type { RowTensor } from '../row-tensor.js';
import type { Next, RowCall, Sequence, SequenceSink } from '../sequence.js';
import { BlockCanvas, promptBlocks, windowBlocks, type PromptBlock } from './block-window.js';
import { stopTokens } from './stop-tokens.js';
import { E2d2Cache, encoderBytes, positionSlice, type E2d2Shape, type EncoderPool, type EncoderTensors, type PastTensors } from './e2d2-cache.js';

export interface E2d2Model extends E2d2Shape {
  vocabSize: number;
  maxLength: number;
  maskId: number;
  eosId: number | null;
  eps: number;
}

export interface E2d2Options {
  /** Re-encode the whole context before every decoder step instead of caching it. */
  recompute?: boolean;
}

type Phase = 'prefill' | 'denoise' | 'encode' | 'commit';

export class E2d2Sequence implements Sequence {
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly generated: number[] = [];
  private readonly cache: E2d2Cache;
  private readonly noPast: PastTensors;
  private readonly recompute: boolean;
  /** Clean tokens in the window, oldest first, and the absolute position of the first. */
  private context: number[] = [];
  private contextStart = 0;
  /** Prompt blocks inside the window still to be found in the pool or encoded, with their hashes. */
  private readonly pending: PromptBlock[];
  /** Hash of the last committed block (names the whole prefix so far). */
  private lastHash: string | null = null;
  private cachedTokens = 0;
  private phase: Phase = 'denoise';
  private readonly block: BlockCanvas;
  private nfe = 0;
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: number,
    private readonly prompt: number[],
    private readonly params: GenerationParams,
    private readonly blockSize: number,
    private readonly model: E2d2Model,
    private readonly pool: EncoderPool,
    private readonly sink: SequenceSink,
    opts: E2d2Options = {},
  ) {
    this.rng = new Rng(params.seed);
    this.block = new BlockCanvas(blockSize, params, model, this.rng);
    this.recompute = opts.recompute ?? false;
    this.cache = new E2d2Cache(model, this.recompute ? null : pool);
    this.noPast = new E2d2Cache(model).pastTensors();
    this.stops = stopTokens(params, model.eosId);
    const p = promptBlocks(prompt, model.eosId, blockSize, this.windowBlocks());
    this.context = p.inWindow.flatMap((b) => b.tokens);
    this.contextStart = p.inWindow[0]?.start ?? p.headStart;
    // The recompute baseline encodes its whole context before each step instead.
    this.pending = this.recompute ? [] : p.inWindow;
    this.lastHash = p.lastHash;
    this.block.open(p.head, p.headStart);
    this.phase = this.pending.length > 0 ? 'prefill' : this.firstPhase();
  }

  private windowBlocks(): number {
    return windowBlocks(this.model.maxLength, this.blockSize);
  }

  private firstPhase(): Phase {
    return this.recompute && this.context.length > 0 ? 'encode' : 'denoise';
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    // Same canvas, same context: the network would return the same logits.
    if (this.phase === 'denoise' && this.block.reusable) return { kind: 'local' };
    if (this.phase === 'prefill') {
      // Blocks another request already encoded cost nothing; the hits are the rest's past.
      while (this.pending.length > 0) {
        const hit = this.pool.acquire(this.pending[0]!.hash);
        if (!hit) break;
        this.pending.shift();
        this.cache.append(hit);
        this.cachedTokens += hit.length;
      }
      if (this.pending.length === 0) this.phase = 'denoise';
    }
    switch (this.phase) {
      case 'prefill': return { kind: 'call', call: this.encoderCall(this.pending.flatMap((p) => p.tokens), this.pending[0]!.start) };
      case 'encode': return { kind: 'call', call: this.encoderCall(this.context, this.contextStart) };
      case 'commit': return { kind: 'call', call: this.encoderCall(Array.from(this.block.tokens), this.block.start) };
      case 'denoise': return { kind: 'call', call: this.decoderCall() };
    }
  }

  private positions(start: number, n: number): RowTensor {
    return { type: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), dims: [n] };
  }

  private encoderCall(tokens: number[], start: number): RowCall {
    // The recompute baseline encodes its whole context from scratch, against no past.
    const past = this.phase === 'encode' ? this.noPast : this.cache.pastTensors();
    return {
      role: 'encoder', tokens, outputStart: 0, outputLength: 0,
      inputs: {
        positions: this.positions(start, tokens.length),
        block_size: { type: 'int64', data: BigInt64Array.of(BigInt(this.blockSize)), dims: [] },
        past_keys: past.keys, past_values: past.values, past_mask: past.mask,
      },
      outputs: ['present_keys', 'present_values', 'present_context_keys', 'present_context_values'],
    };
  }

  private decoderCall(): RowCall {
    const ctx = this.cache.contextTensors();
    return {
      role: 'decoder', tokens: Array.from(this.block.tokens), outputStart: 0, outputLength: this.block.tokens.length,
      inputs: {
        positions: this.positions(this.block.start, this.block.tokens.length),
        context_keys: ctx.keys, context_values: ctx.values, context_mask: ctx.mask,
      },
    };
  }

  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    this.nfe++;
    if (this.finishReason) return; // cancelled while the call ran
    if (this.phase === 'denoise') { this.denoise(logits); return; }
    const n = this.phase === 'prefill' ? this.pending.length * this.blockSize : this.phase === 'encode' ? this.context.length : this.block.tokens.length;
    const outs = ['present_keys', 'present_values', 'present_context_keys', 'present_context_values'].map((name) => {
      const t = extra?.[name];
      if (!t) throw new Error(`the encoder graph returned no ${name}`);
      return t;
    }) as [RowTensor, RowTensor, RowTensor, RowTensor];
    if (this.phase === 'encode') this.cache.clear();
    // One cache entry per block, so that the window drops blocks one at a time.
    for (let a = 0, i = 0; a < n; a += this.blockSize, i++) {
      const b = Math.min(n, a + this.blockSize);
      const [encKeys, encValues, ctxKeys, ctxValues] = outs.map((t) => positionSlice(t, a, b)) as [Float32Array, Float32Array, Float32Array, Float32Array];
      const tensors = { encKeys, encValues, ctxKeys, ctxValues };
      if (this.phase === 'encode') this.cache.append({ length: b - a, ...tensors });
      else if (this.phase === 'prefill') this.store(this.pending[i]!.hash, b - a, tensors);
      else {
        this.lastHash = blockHash(this.lastHash, this.block.tokens);
        this.store(this.lastHash, b - a, tensors);
      }
    }
    if (this.phase === 'commit') {
      while (this.cache.blockCount > this.windowBlocks()) this.cache.dropOldest();
      this.block.open([], this.block.start + this.blockSize);
    }
    this.pending.length = 0;
    this.phase = 'denoise';
  }

  /** Into the pool; when the budget is full of referenced blocks, give up our own oldest first. */
  private store(hash: string, length: number, tensors: EncoderTensors): void {
    for (;;) {
      const b = this.pool.put(hash, length, tensors, encoderBytes(tensors));
      if (b) { this.cache.append(b); return; }
      if (this.cache.blockCount === 0) throw new Error(`the block cache budget (${this.pool.budgetBytes} bytes) cannot hold one E2D2 block; raise --cache-mb`);
      this.cache.dropOldest();
    }
  }

  advance(): void {
    this.denoise(null);
  }

  private denoise(logits: Float32Array | null): void {
    if (this.block.denoise(logits, this.sink, this.generated.length)) this.finishBlock();
    else if (this.recompute && !this.block.reusable) this.phase = 'encode';
  }

  /** The block is final: stream it, stop if it says so, else encode it next. */
  private finishBlock(): void {
    const { fresh, stopped } = this.block.final(this.stops, this.params.maxTokens - this.generated.length);
    for (const t of fresh) this.generated.push(t);
    if (fresh.length > 0) this.sink.commit(fresh);
    if (stopped) { this.finish('stop'); return; }
    if (this.generated.length >= this.params.maxTokens) { this.finish('length'); return; }
    for (const t of this.block.tokens) this.context.push(t);
    const over = this.context.length - this.windowBlocks() * this.blockSize;
    if (over > 0) { this.context.splice(0, over); this.contextStart += over; }
    if (this.recompute) {
      this.block.open([], this.block.start + this.blockSize);
      this.phase = 'encode';
    } else {
      this.phase = 'commit';
    }
  }

  private finish(reason: FinishReason): void {
    if (this.finishReason) return;
    this.finishReason = reason;
    this.cache.clear();
  }

  stop(reason: FinishReason): void {
    this.finish(reason);
  }

  /** Encoder state this sequence references now (bytes; shared blocks count in full). */
  get cacheBytes(): number {
    return this.cache.bytes;
  }

  usage(): Usage {
    return { promptTokens: this.prompt.length, completionTokens: this.generated.length, nfe: this.nfe, cachedTokens: this.cachedTokens };
  }
}
