// Which of the Duo / ReMDM samplers a model can run. A Duo posterior on a masked model, or
// remasking on a uniform one, would decode garbage without failing; this check turns that
// into a clear error naming the request field, before any network call.
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import { isDuoSampler } from './duo.js';
import { REMDM_SAMPLER } from './remdm.js';

export class SamplerMismatch extends SettingsError {
  constructor(message: string, field: 'sampler' | 'remasking') {
    super(field, message);
    this.name = 'SamplerMismatch';
  }
}

type FitManifest = Pick<Manifest, 'name' | 'noise' | 'samplers' | 'special_tokens'>;

/**
 * Throws SamplerMismatch when `sampler` (with `remasking` set or not) does not fit the model.
 * Samplers that are not Duo's or ReMDM's pass through: their own family checks them.
 */
export function checkUniformSamplerFits(m: FitManifest, sampler: string, remasking: boolean): void {
  const noise = m.noise?.type ?? null;
  if (isDuoSampler(sampler) && noise !== 'uniform') {
    throw new SamplerMismatch(`sampler '${sampler}' needs a uniform-noise (Duo) model; ${m.name} is ${noise ?? 'not a diffusion model'}`, 'sampler');
  }
  if (sampler === REMDM_SAMPLER && (noise !== 'masked' || m.special_tokens.mask === null)) {
    throw new SamplerMismatch(`sampler 'remdm' remasks tokens and needs a masked model; ${m.name} is ${noise ?? 'not a diffusion model'}`, 'sampler');
  }
  if (remasking && sampler !== REMDM_SAMPLER) {
    throw new SamplerMismatch(`remasking needs sampler 'remdm' (got '${sampler}')`, 'remasking');
  }
  if ((isDuoSampler(sampler) || sampler === REMDM_SAMPLER) && !m.samplers.includes(sampler)) {
    throw new SamplerMismatch(`sampler '${sampler}' is not among ${m.name}'s samplers (${m.samplers.join(', ')})`, 'sampler');
  }
}
