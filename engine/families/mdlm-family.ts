// MDLM as a registered family: settings checks and the sequence it builds.
import { EngineRequestError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { isMaskedSampler } from '../samplers/masked.js';
import type { Family } from './registry.js';
import { MdlmSequence, type MaskedModel } from './mdlm.js';

export function maskedModel(m: Manifest): MaskedModel {
  return {
    vocabSize: m.vocab_size,
    maxLength: m.max_length,
    maskId: m.special_tokens.mask!,
    eosId: m.special_tokens.eos,
    eps: m.noise?.eps ?? 1e-3,
    defaultWindow: Math.min(128, Math.max(1, Math.floor(m.max_length / 2))),
  };
}

export const mdlmFamily: Family = {
  validate(params: GenerationParams, m: Manifest): void {
    if (!isMaskedSampler(params.sampler)) {
      throw new EngineRequestError('invalid_request', `sampler '${params.sampler}' is not supported by ${m.name} (${m.samplers.join(', ')})`, 'sampler');
    }
    if (params.blockSize !== undefined && (params.blockSize < 1 || params.blockSize >= m.max_length)) {
      throw new EngineRequestError('invalid_request', `block_size must be in [1, ${m.max_length - 1}]`, 'block_size');
    }
  },
  create(id, prompt, params, { manifest, sink }) {
    const model = maskedModel(manifest);
    const budget = model.maxLength - Math.min(params.blockSize ?? model.defaultWindow, params.maxTokens);
    // Keep the end of the prompt: the window must fit beside it in the model's length.
    if (prompt.length > budget) prompt = prompt.slice(prompt.length - budget);
    return new MdlmSequence(id, prompt, params, model, sink);
  },
};
