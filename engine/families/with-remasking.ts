// Not a family but a wrapper around one: ReMDM and loopholing on masked models. It wraps the
// MDLM family so that the `remdm` sampler (remasking schedules) and LDDM manifests
// (`loopholing` set: a latent carried between steps) get the masked window sequence, and
// every other request goes to the wrapped family unchanged.
// On an LDDM model `ddpm` is ReMDM with no remasking (MDLM's ancestral step) carrying the
// latent; samplers that skip or batch unmasking differently do not carry it and are refused.
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { MaskedWindowSequence } from '../samplers/duo-sequence.js';
import { REMDM_SAMPLER } from '../samplers/remdm.js';
import { RemaskingError, resolveRemasking } from '../samplers/remdm-schedule.js';
import { checkFits, checkWindow, windowedModel } from './duo-family.js';
import type { Family } from './family.js';

/** Samplers an LDDM (loopholing) model can run: each carries the latent through every step. */
export const LOOPHOLING_SAMPLERS = ['ddpm', REMDM_SAMPLER] as const;

function usesMaskedWindow(params: GenerationParams, m: Manifest): boolean {
  return params.sampler === REMDM_SAMPLER || m.loopholing !== undefined;
}

function validateRemdm(params: GenerationParams, m: Manifest): void {
  checkFits(params, m);
  if (m.special_tokens.mask === null) throw new SettingsError('sampler', `${m.name} has no [MASK] token`);
  if (m.loopholing && !(LOOPHOLING_SAMPLERS as readonly string[]).includes(params.sampler)) {
    throw new SettingsError('sampler', `'${params.sampler}' does not carry ${m.name}'s loopholing latent: use ${LOOPHOLING_SAMPLERS.join(' or ')}`);
  }
  if (params.remasking) {
    try {
      resolveRemasking(params.remasking);
    } catch (err) {
      if (err instanceof RemaskingError) throw new SettingsError(err.param, err.detail);
      throw err;
    }
  }
  checkWindow(params, m);
}

export function withRemasking(base: Family): Family {
  return {
    ...(base.cacheLayout ? { cacheLayout: base.cacheLayout } : {}),
    validate(params, manifest) {
      // remasking on any other sampler is refused here, not silently ignored by the base family.
      checkFits(params, manifest);
      if (usesMaskedWindow(params, manifest)) validateRemdm(params, manifest);
      else base.validate(params, manifest);
    },
    create(id, prompt, params, ctx) {
      if (!usesMaskedWindow(params, ctx.manifest)) return base.create(id, prompt, params, ctx);
      return new MaskedWindowSequence(id, prompt, params, windowedModel(ctx.manifest), ctx.sink);
    },
  };
}
