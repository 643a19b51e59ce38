// BD3-LM as a registered family: block_size must be one the model was trained for; every
// sequence of one loaded model shares the engine's block cache (bd3lm-cache.ts's layout).
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { bd3lmLayout } from './bd3lm-cache.js';
import { Bd3lmSequence, type BlockModel } from './bd3lm.js';
import type { Family } from './family.js';
import { maskedFields, requireMaskedSampler } from './masked-model.js';

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
    const bs = blockSizeOf(params, m);
    if (!sizes.includes(bs)) throw new SettingsError('block_size', `must be one of ${sizes.join(', ')}, got ${bs}`);
    if (bs >= m.max_length) throw new SettingsError('block_size', `must be below the model's length ${m.max_length}, got ${bs}`);
  },
  cacheLayout: bd3lmLayout,
  create(id, prompt, params, { manifest, sink, cache }) {
    return new Bd3lmSequence(id, prompt, params, blockSizeOf(params, manifest), blockModel(manifest), bd3lmLayout(manifest), cache, sink);
  },
};
