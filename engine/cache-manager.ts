// The engine's block cache for one loaded model, as vLLM's KVCacheManager sits on its
// BlockPool: EngineCore builds it once when it opens a model whose family caches blocks and
// hands it to every sequence in the family context. It knows the family's block layout (which
// tensors a block holds and their shapes), finds a prompt's cached prefix by its block hashes,
// stores new blocks (checking their shapes, charging their bytes), takes references back, and
// reports what it holds. Sequences see it only through their BlockTable. MDLM's kv_cache charges
// its per-sequence K/V here too (allocate / free: bytes, no blocks), under the same budget.
import { BlockPool, type PoolBlock } from './block-pool.js';

/** Bytes the cache may hold when the engine options name no budget (--cache-mb). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * One attention past that blocks contribute to: the names of a block's key and value tensors,
 * each [layers, heads, length, headDim].
 */
export interface KvGroup {
  readonly keys: string;
  readonly values: string;
  readonly layers: number;
}

/** What a family's block holds: BD3-LM one past (its own keys and values), E2D2 two. */
export interface CacheLayout {
  readonly heads: number;
  readonly headDim: number;
  readonly groups: Readonly<Record<string, KvGroup>>;
}

export type BlockTensors = Readonly<Record<string, Float32Array>>;
export type CachedBlock = PoolBlock<BlockTensors>;

export interface CacheStats {
  bytes: number;
  budgetBytes: number;
  blocks: number;
  references: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Of `bytes`, those held by sequences' private K/V (MDLM's kv_cache) and how many hold some. */
  privateBytes: number;
  privateAllocations: number;
  /** Times a sequence's K/V did not fit the budget and it ran that stretch uncached. */
  privateFallbacks: number;
}

/** Checks a block's tensors against the layout; returns the bytes they take. */
export function blockBytes(layout: CacheLayout, length: number, tensors: BlockTensors): number {
  let bytes = 0;
  for (const g of Object.values(layout.groups)) {
    const n = g.layers * layout.heads * length * layout.headDim;
    const k = tensors[g.keys];
    const v = tensors[g.values];
    if (k?.length !== n || v?.length !== n) {
      throw new Error(`block of ${length} tokens needs ${n} values per tensor, got ${k?.length ?? 0}/${v?.length ?? 0}`);
    }
    bytes += k.byteLength + v.byteLength;
  }
  return bytes;
}

export class CacheManager {
  private readonly pool: BlockPool<BlockTensors>;
  private privateFallbacks = 0;

  constructor(readonly layout: CacheLayout, readonly budgetBytes = DEFAULT_CACHE_BYTES) {
    this.pool = new BlockPool(budgetBytes);
  }

  /** The cached prefix of these block hashes (in order, up to the first miss), each referenced. */
  lookup(hashes: readonly string[]): CachedBlock[] {
    const found: CachedBlock[] = [];
    for (const h of hashes) {
      const b = this.pool.acquire(h);
      if (!b) break;
      found.push(b);
    }
    return found;
  }

  /**
   * A freshly computed block, referenced for the caller (shared if another sequence stored the
   * same prefix meanwhile); null when the budget is full of referenced blocks.
   */
  store(hash: string, length: number, tensors: BlockTensors): CachedBlock | null {
    return this.pool.put(hash, length, tensors, blockBytes(this.layout, length, tensors));
  }

  release(b: CachedBlock): void {
    this.pool.release(b);
  }

  /** Charges one sequence's private K/V to the budget; false (counted) when it does not fit. */
  allocate(bytes: number): boolean {
    if (this.pool.reserve(bytes)) return true;
    this.privateFallbacks++;
    return false;
  }

  free(bytes: number): void {
    this.pool.unreserve(bytes);
  }

  stats(): CacheStats {
    const p = this.pool;
    return {
      bytes: p.bytes, budgetBytes: p.budgetBytes, blocks: p.size, references: p.references, hits: p.hits, misses: p.misses, evictions: p.evictions,
      privateBytes: p.reservedBytes, privateAllocations: p.allocations, privateFallbacks: this.privateFallbacks,
    };
  }
}
