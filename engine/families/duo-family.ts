// Duo (uniform-state diffusion) as a registered family: the Duo samplers only, sigma fed to
// the network when its graph takes it, the LDDM latent carried when the manifest has one
// (LDDM-U: `family: duo` with `loopholing`). Both Duo samplers call the network at every step,
// so both carry the latent and neither is refused on an LDDM-U model.
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { DUO_SAMPLERS, isDuoSampler } from '../samplers/duo.js';
import { checkUniformSamplerFits } from '../samplers/duo-fit.js';
import { DuoSequence, type WindowedModel } from '../samplers/duo-sequence.js';
import { latentDim } from '../loopholing.js';
import { DuoKvWindow } from './duo-kv.js';
import type { Family } from './family.js';
import { kvCacheLayout, kvShape } from './kv-past.js';

/** The model facts a windowed (Duo / ReMDM / LDDM) sequence needs, from the manifest. */
export function windowedModel(m: Manifest): WindowedModel {
  return {
    vocabSize: m.vocab_size,
    maxLength: m.max_length,
    eps: m.noise?.eps ?? 1e-3,
    maskId: m.special_tokens.mask,
    eosId: m.special_tokens.eos,
    latentDim: latentDim(m),
    readsSigma: m.graphs.denoiser?.inputs.includes('sigma') ?? false,
  };
}

/** Which of the Duo / ReMDM samplers fit the model (SamplerMismatch names the field). */
export function checkFits(params: GenerationParams, m: Manifest): void {
  checkUniformSamplerFits(m, params.sampler, params.remasking !== undefined);
}

/** A window length a request may ask of a whole-sequence model. */
export function checkWindow(params: GenerationParams, m: Manifest): void {
  if (params.blockSize !== undefined && (params.blockSize < 1 || params.blockSize >= m.max_length)) {
    throw new SettingsError('block_size', `must be in [1, ${m.max_length - 1}], got ${params.blockSize}`);
  }
}

export const duoFamily: Family = {
  validate(params: GenerationParams, m: Manifest): void {
    checkFits(params, m);
    if (!isDuoSampler(params.sampler)) {
      throw new SettingsError('sampler', `'${params.sampler}' does not fit ${m.name}, a uniform-state (Duo) model: use ${DUO_SAMPLERS.join(' or ')}`);
    }
    checkWindow(params, m);
  },
  // Only to charge kv_cache's per-sequence K/V to the engine's budget: Duo caches no blocks.
  cacheLayout: kvCacheLayout,
  create(id, prompt, params, { manifest, sink, cache }) {
    const mode = params.kvCache ?? 'off';
    const kv = mode === 'off' ? null : new DuoKvWindow(mode, params, kvShape(manifest), cache);
    return new DuoSequence(id, prompt, params, windowedModel(manifest), sink, kv);
  },
};
