// BD3-LM as a registered family: block_size must be one the model was trained for, and every
// sequence of one loaded model shares one block cache (its byte budget is an engine option).
import { BlockCache } from '../block-cache.js';
import { EngineRequestError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { Bd3lmSequence, type BlockModel } from './bd3lm.js';
import { maskedFields, requireMaskedSampler } from './masked-family.js';
import type { Family } from './registry.js';

export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

// One pool per loaded model: the manifest object is the engine's own, so it keys the pool
// without the registry holding engine state.
const pools = new WeakMap<Manifest, BlockCache>();

export function blockCacheOf(m: Manifest, budgetBytes = DEFAULT_CACHE_BYTES): BlockCache {
  let c = pools.get(m);
  if (!c) {
    const a = m.architecture;
    c = new BlockCache(budgetBytes, { nLayers: a.n_layers, nHeads: a.n_heads, headDim: a.head_dim });
    pools.set(m, c);
  }
  return c;
}

export function blockModel(m: Manifest): BlockModel {
  return maskedFields(m);
}

export function blockSizeOf(params: GenerationParams, m: Manifest): number {
  return params.blockSize ?? m.block!.size;
}

export const bd3lmFamily: Family = {
  blockwise: true,
  validate(params: GenerationParams, m: Manifest): void {
    requireMaskedSampler(params, m);
    const sizes = m.block!.sizes;
    if (params.blockSize !== undefined && !sizes.includes(params.blockSize)) {
      throw new EngineRequestError('invalid_request', `block_size must be one of ${sizes.join(', ')} for ${m.name}`, 'block_size');
    }
    if (blockSizeOf(params, m) >= m.max_length) {
      throw new EngineRequestError('invalid_request', `block_size must be below the model's length ${m.max_length}`, 'block_size');
    }
  },
  create(id, prompt, params, { manifest, sink, cacheBudgetBytes }) {
    const cache = blockCacheOf(manifest, cacheBudgetBytes ?? DEFAULT_CACHE_BYTES);
    return new Bd3lmSequence(id, prompt, params, blockSizeOf(params, manifest), blockModel(manifest), cache, sink);
  },
  cache(manifest, budgetBytes) {
    const c = blockCacheOf(manifest, budgetBytes ?? DEFAULT_CACHE_BYTES);
    return { bytes: c.bytes, budgetBytes: c.budgetBytes };
  },
};
