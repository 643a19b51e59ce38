// One denoising step of a masked-diffusion canvas, as every masked family runs it (MDLM's
// window, BD3-LM's and E2D2's blocks): how many steps a canvas gets, and which sampler moves it.
// The families differ in what they feed the network, never in how a step uses its logits.
import type { GenerationParams } from '../protocol.js';
import type { Rng } from '../rng.js';
import { entropyBoundedStep, factorStep } from '../samplers/adaptive.js';
import {
  confidenceThresholdStep, confidenceTopkStep, ddpmStep, firstHittingStep, type MaskedSampler,
} from '../samplers/masked.js';

/** Fast-dLLM's factor f and the EB-sampler's gamma (nats) when a request names the rule alone. */
export const DEFAULT_CONFIDENCE_FACTOR = 1;
export const DEFAULT_ENTROPY_BOUND = 0.1;

/** What a step needs from the model (the fields every masked family's model has). */
export interface MaskedStepModel {
  vocabSize: number;
  maskId: number;
  eps: number;
}

/**
 * Steps planned for a canvas with `masked` [MASK] positions: first_hitting decodes one token
 * per call, and the adaptive rules at least one (they stop when the canvas is full, whatever
 * `steps` says); the confidence samplers need no more calls than tokens; ddpm keeps the
 * requested steps (its last step unmasks whatever is left).
 */
export function plannedSteps(params: GenerationParams, masked: number): number {
  const sampler = params.sampler as MaskedSampler;
  if (sampler === 'first_hitting' || sampler === 'entropy_bound' || sampler === 'confidence_factor') return masked;
  if (sampler.startsWith('confidence')) return Math.min(params.steps, masked);
  return params.steps;
}

/** Unmask some of `canvas` in place with the request's sampler; returns how many changed. */
export function maskedStep(
  canvas: Int32Array, logits: Float32Array, step: number, steps: number,
  params: GenerationParams, model: MaskedStepModel, rng: Rng,
): number {
  const x = {
    canvas, maskId: model.maskId, logits, V: model.vocabSize,
    shaping: { temperature: params.temperature, topK: params.topK, topP: params.topP },
    rng, step, steps, eps: model.eps,
  };
  const sampler = params.sampler as MaskedSampler;
  switch (sampler) {
    case 'ddpm':
    case 'ddpm_cache': return ddpmStep(x);
    case 'first_hitting': return firstHittingStep(x);
    case 'confidence_topk': return confidenceTopkStep(x);
    case 'confidence_threshold': return confidenceThresholdStep(x, params.confidenceThreshold ?? 0.9);
    case 'confidence_factor': return factorStep(x, params.confidenceFactor ?? DEFAULT_CONFIDENCE_FACTOR);
    case 'entropy_bound': return entropyBoundedStep(x, params.entropyBound ?? DEFAULT_ENTROPY_BOUND);
    default: throw new Error(`sampler '${String(sampler)}' is not a masked-diffusion sampler`);
  }
}
