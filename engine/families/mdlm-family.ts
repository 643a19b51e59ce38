// MDLM as a registered family: settings checks and the sequence it builds.
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { checkWindow } from './duo-family.js';
import { maskedFields, requireMaskedSampler } from './masked-model.js';
import type { Family } from './family.js';
import { MdlmSequence, type MaskedModel } from './mdlm.js';
import { kvCacheLayout } from './kv-past.js';
import { KvWindow, kvShape } from './mdlm-kv.js';

export function maskedModel(m: Manifest): MaskedModel {
  return {
    ...maskedFields(m),
    defaultWindow: Math.min(128, Math.max(1, Math.floor(m.max_length / 2))),
  };
}

export const mdlmFamily: Family = {
  validate(params: GenerationParams, m: Manifest): void {
    requireMaskedSampler(params, m);
    checkWindow(params, m);
  },
  // Only to charge kv_cache's per-sequence K/V to the engine's budget: MDLM caches no blocks.
  cacheLayout: kvCacheLayout,
  create(id, prompt, params, { manifest, sink, cache }) {
    const model = maskedModel(manifest);
    const budget = model.maxLength - Math.min(params.blockSize ?? model.defaultWindow, params.maxTokens);
    // Keep the end of the prompt: the window must fit beside it in the model's length.
    if (prompt.length > budget) prompt = prompt.slice(prompt.length - budget);
    const mode = params.kvCache ?? 'off';
    const kv = mode === 'off' ? null : new KvWindow(mode, params, kvShape(manifest), model.maskId, cache);
    return new MdlmSequence(id, prompt, params, model, sink, kv);
  },
};
