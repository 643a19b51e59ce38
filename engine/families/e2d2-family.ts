// E2D2 as a registered family: settings checks and the sequence it builds. Every sequence of one
// loaded model shares the engine's block cache of encoded blocks (e2d2-cache.ts's layout).
import { EngineRequestError, SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { e2d2Layout } from './e2d2-cache.js';
import { E2d2Sequence, type E2d2Model, type E2d2Options } from './e2d2.js';
import type { Family } from './family.js';
import { maskedFields, requireMaskedSampler } from './masked-model.js';

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

/** The family; `opts` exists for the recompute baseline (tests, benchmarks). */
export function makeE2d2Family(opts: E2d2Options = {}): Family {
  return {
    blockwise: true,
    validate(params: GenerationParams, m: Manifest): void {
      requireMaskedSampler(params, m);
      const sizes = m.block?.sizes ?? [];
      const bs = blockSizeOf(params, m);
      if (!sizes.includes(bs)) throw new SettingsError('block_size', `must be one of ${sizes.join(', ')}, got ${bs}`);
    },
    cacheLayout: (m) => e2d2Layout(e2d2Model(m)),
    create(id, prompt, params, { manifest, sink, cache }) {
      return new E2d2Sequence(id, prompt, params, blockSizeOf(params, manifest), e2d2Model(manifest), cache, sink, opts);
    },
  };
}

export const e2d2Family: Family = makeE2d2Family();
