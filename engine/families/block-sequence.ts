// A block-by-block decoder (BD3-LM, E2D2) as one Sequence: the prompt's whole blocks inside the
// window are looked up in the engine's block cache by their hashes and only the misses are
// computed; the prompt's remainder opens the first block, whose other positions start [MASK]
// and are denoised by a masked sampler; a finished block streams at once, then the family
// computes its cache entry and the next block opens. The sequence's BlockTable holds its blocks
// and slides with the window. Subclasses say only which graph calls they make and how their
// outputs become a block's tensors.
import { blockHash } from '../block-pool.js';
import { BlockTable } from '../block-table.js';
import type { BlockTensors, CacheLayout, CacheManager } from '../cache-manager.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import type { RowTensor } from '../row-tensor.js';
import type { Next, Sequence, SequenceSink } from '../sequence.js';
import { BlockCanvas, promptBlocks, windowBlocks, type PromptBlock } from './block-window.js';
import { stopTokens } from './stop-tokens.js';

export interface BlockModel {
  vocabSize: number;
  maxLength: number;
  maskId: number;
  eosId: number | null;
  eps: number;
}

export abstract class BlockSequence implements Sequence {
  private readonly stops: Set<number>;
  protected readonly generated: number[] = [];
  protected readonly block: BlockCanvas;
  protected readonly table: BlockTable;
  /** Committed blocks that fit beside the one being generated. */
  protected readonly window: number;
  /** The prompt's whole blocks inside the window, as cut at the start. */
  protected readonly promptWindow: readonly PromptBlock[];
  /** Prompt blocks still to be found in the cache or computed, oldest first. */
  protected readonly pending: PromptBlock[];
  /** Hash of the last committed block (names the whole prefix so far). */
  private lastHash: string | null;
  private cachedTokens = 0;
  private nfe = 0;
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: number,
    private readonly prompt: number[],
    protected readonly params: GenerationParams,
    protected readonly blockSize: number,
    model: BlockModel,
    layout: CacheLayout,
    cache: CacheManager | null,
    protected readonly sink: SequenceSink,
  ) {
    this.block = new BlockCanvas(blockSize, params, model, new Rng(params.seed));
    this.stops = stopTokens(params, model.eosId);
    this.window = windowBlocks(model.maxLength, blockSize);
    const p = promptBlocks(prompt, model.eosId, blockSize, this.window);
    this.promptWindow = p.inWindow;
    this.pending = [...p.inWindow];
    this.lastHash = p.lastHash;
    this.block.open(p.head, p.headStart);
    this.table = new BlockTable(layout, this.window, cache);
  }

  abstract next(): Next;
  /** The network's answer to the call next() asked for (the sequence is live). */
  protected abstract take(logits: Float32Array, extra: Record<string, RowTensor> | undefined): void;

  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    this.nfe++;
    if (this.finishReason) return; // cancelled while the call ran
    this.take(logits, extra);
  }

  /** Prompt blocks another request already computed cost nothing: they leave `pending`. */
  protected takeCachedPrefix(): void {
    if (this.pending.length === 0) return;
    const hit = this.table.lookup(this.pending.map((p) => p.hash));
    this.pending.splice(0, hit.blocks);
    this.cachedTokens += hit.tokens;
  }

  /** The next pending prompt block was computed: into the cache. */
  protected storePrompt(tensors: BlockTensors): void {
    const p = this.pending.shift()!;
    this.table.store(p.hash, p.tokens.length, tensors);
  }

  /** The finished block's entry was computed: into the cache; the next block opens. */
  protected commitBlock(tensors: BlockTensors): void {
    this.lastHash = blockHash(this.lastHash, this.block.tokens);
    this.table.store(this.lastHash, this.block.tokens.length, tensors);
    this.openNext();
  }

  protected openNext(): void {
    this.block.open([], this.block.start + this.blockSize);
  }

  advance(): void {
    this.denoise(null);
  }

  /** One step of the block; at its end the block streams and, unless the sequence ends, `blockDone` runs. */
  protected denoise(logits: Float32Array | null): void {
    if (this.block.denoise(logits, this.sink, this.generated.length)) {
      if (this.emitBlock()) this.blockDone();
    }
  }

  /** The block is final and the sequence goes on: compute its cache entry next (or its own way). */
  protected abstract blockDone(): void;

  /** Streams the final block's new tokens; false when they end the sequence. */
  private emitBlock(): boolean {
    const { fresh, stopped } = this.block.final(this.stops, this.params.maxTokens - this.generated.length);
    for (const t of fresh) this.generated.push(t);
    if (fresh.length > 0) this.sink.commit(fresh);
    if (stopped) this.finish('stop');
    else if (this.generated.length >= this.params.maxTokens) this.finish('length');
    return this.finishReason === null;
  }

  protected finish(reason: FinishReason): void {
    if (this.finishReason) return;
    this.finishReason = reason;
    this.table.clear();
  }

  stop(reason: FinishReason): void {
    this.finish(reason);
  }

  usage(): Usage {
    return { promptTokens: this.prompt.length, completionTokens: this.generated.length, nfe: this.nfe, cachedTokens: this.cachedTokens };
  }
}
