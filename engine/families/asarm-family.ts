// ASSD on an any-subset autoregressive model as a registered family: settings checks and the
// sequence it builds.
import { SettingsError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import type { Family } from './family.js';
import { AsarmSequence, type AsarmModel } from './asarm.js';

/** Largest speculative_k a request may ask for (ModelInfo.limits.maxSpeculativeK). */
export const MAX_SPECULATIVE_K = 16;
const DEFAULT_K = 5;

export function asarmModel(m: Manifest): AsarmModel {
  return {
    vocabSize: m.vocab_size,
    maxLength: m.max_length,
    maskId: m.special_tokens.mask,
    eosId: m.special_tokens.eos,
    speculativeK: m.defaults.speculative_k ?? DEFAULT_K,
  };
}

export const asarmFamily: Family = {
  validate(params: GenerationParams, m: Manifest): void {
    if (params.sampler !== 'assd') throw new SettingsError('sampler', `'${params.sampler}' is not supported by ${m.name} (assd)`);
    const k = params.speculativeK ?? asarmModel(m).speculativeK;
    if (!Number.isInteger(k) || k < 1 || k > MAX_SPECULATIVE_K) {
      throw new SettingsError('speculative_k', `must be an integer in [1, ${MAX_SPECULATIVE_K}], got ${k}`);
    }
    if (params.confidenceThreshold !== undefined) {
      throw new SettingsError('confidence_threshold', `is a masked-diffusion setting; ${m.name} decodes with ASSD`, 'unsupported_parameter');
    }
    if (params.streamDrafts) throw new SettingsError('stream_drafts', `${m.name} decodes with ASSD, which has no per-position proposals to stream`, 'unsupported_parameter');
  },
  create(id, prompt, params, { manifest, sink }) {
    return new AsarmSequence(id, prompt, params, asarmModel(manifest), sink);
  },
};
