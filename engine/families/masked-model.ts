// Not a family: what every masked-diffusion family (MDLM, BD3-LM, E2D2) reads from its
// manifest and checks on a request before building a sequence: the model's masked-diffusion fields, and that the
// request's sampler is a masked one.
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { isMaskedSampler } from '../samplers/masked.js';

export interface MaskedFields {
  vocabSize: number;
  maxLength: number;
  maskId: number;
  eosId: number | null;
  eps: number;
}

export function maskedFields(m: Manifest): MaskedFields {
  return { vocabSize: m.vocab_size, maxLength: m.max_length, maskId: m.special_tokens.mask!, eosId: m.special_tokens.eos, eps: m.noise?.eps ?? 1e-3 };
}

export function requireMaskedSampler(params: GenerationParams, m: Manifest): void {
  if (!isMaskedSampler(params.sampler)) {
    throw new SettingsError('sampler', `'${params.sampler}' is not a masked-diffusion sampler; ${m.name} supports ${m.samplers.join(', ')}`);
  }
}
