// What a family is to the engine: it checks a request's settings against the manifest and builds
// the Sequence the scheduler drives; a family that caches committed blocks names their layout,
// and EngineCore builds the model's cache manager from it. EngineCore knows nothing else
// family-specific. The families themselves are listed in registry.ts.
import type { CacheLayout, CacheManager } from '../cache-manager.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import type { Sequence, SequenceSink } from '../sequence.js';

export interface FamilyContext {
  manifest: Manifest;
  /** Counts tokens as they commit (the engine's totals), then forwards to the server. */
  sink: SequenceSink;
  /** The model's block cache (families with a cacheLayout); null for the others. */
  cache: CacheManager | null;
}

export interface Family {
  /** Throws EngineRequestError for settings this model cannot take. */
  validate(params: GenerationParams, manifest: Manifest): void;
  create(id: number, prompt: number[], params: GenerationParams, ctx: FamilyContext): Sequence;
  /** Families that cache committed blocks: what one block holds (undefined: no cache for this model). */
  cacheLayout?(manifest: Manifest): CacheLayout | undefined;
  /**
   * Block by block with a sliding window (BD3-LM, E2D2): a request may write past the model's
   * context (up to BLOCKWISE_CONTEXTS contexts), and BD3-LM's variable-length rule (the entropy
   * stop) is on by default.
   */
  blockwise?: true;
}
