// E2D2 as a registered family: settings checks and the sequence it builds. Every sequence of one
// loaded model shares one pool of encoded blocks (the --cache-mb budget, as BD3-LM's).
import { BlockPool } from '../block-cache.js';
import { EngineRequestError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { maskedFields, requireMaskedSampler } from './masked-family.js';
import type { Family } from './registry.js';
import { DEFAULT_CACHE_BYTES } from './bd3lm-family.js';
import type { EncoderPool, EncoderTensors } from './e2d2-cache.js';
import { E2d2Sequence, type E2d2Model, type E2d2Options } from './e2d2.js';

function layers(m: Manifest, key: 'encoder_layers' | 'decoder_layers'): number {
  const n = m.architecture[key];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new EngineRequestError('unsupported_model', `model ${m.name}: architecture.${key} must be a positive integer for family e2d2`);
  }
  return n;
}

export function e2d2Model(m: Manifest): E2d2Model {
  return {
    ...maskedFields(m),
    encLayers: layers(m, 'encoder_layers'),
    decLayers: layers(m, 'decoder_layers'),
    // Grouped-query models (the converted Qwen3 E2D2) cache fewer key/value heads than they query with.
    kvHeads: m.architecture.n_kv_heads ?? m.architecture.n_heads,
    headDim: m.architecture.head_dim,
  };
}

export function blockSizeOf(params: GenerationParams, m: Manifest): number {
  return params.blockSize ?? m.block?.size ?? 4;
}

export interface E2d2Family extends Family {
  /** The loaded model's pool of encoded blocks (created on first use with this budget). */
  pool(manifest: Manifest, budgetBytes?: number): EncoderPool;
}

/**
 * The family; `opts` exists for the recompute baseline (tests, benchmarks). Each family object
 * has its own pools (one per loaded model: the manifest object is the engine's own), so a test
 * can start from an empty pool with a fresh family.
 */
export function makeE2d2Family(opts: E2d2Options = {}): E2d2Family {
  const pools = new WeakMap<Manifest, EncoderPool>();
  const pool = (m: Manifest, budgetBytes = DEFAULT_CACHE_BYTES): EncoderPool => {
    let p = pools.get(m);
    if (!p) { p = new BlockPool<EncoderTensors>(budgetBytes); pools.set(m, p); }
    return p;
  };
  return {
    blockwise: true,
    pool,
    validate(params: GenerationParams, m: Manifest): void {
      requireMaskedSampler(params, m);
      const sizes = m.block?.sizes ?? [];
      const bs = blockSizeOf(params, m);
      if (!sizes.includes(bs)) {
        throw new EngineRequestError('invalid_request', `block_size ${bs} is not one of this model's block sizes (${sizes.join(', ')})`, 'block_size');
      }
      e2d2Model(m);
    },
    create(id, prompt, params, { manifest, sink, cacheBudgetBytes }) {
      return new E2d2Sequence(id, prompt, params, blockSizeOf(params, manifest), e2d2Model(manifest), pool(manifest, cacheBudgetBytes), sink, opts);
    },
    cache(manifest, budgetBytes) {
      const p = pool(manifest, budgetBytes);
      return { bytes: p.bytes, budgetBytes: p.budgetBytes };
    },
  };
}

export const e2d2Family: E2d2Family = makeE2d2Family();
