// Generation settings a request may carry, in one place: the OpenAI fields (max_tokens,
// temperature, top_p, seed, stop) and the diffusion extras that ride top-level like vLLM's
// extra parameters (steps, sampler, block_size, ...). The HTTP bodies and the WebSocket
// `generate` message all spread SETTINGS_SHAPE, and resolveParams turns a request's settings
// into the engine's GenerationParams: the request's shape here (the context, which fields this
// model reads at all), the values against the model in the engine's validateParams, run here
// before admission and trusted by the engine. A new family setting is one field here, one line
// in resolveParams and its check in the family's validate.
// A namespace import, so that a bundler keeps only the parts used (zod's root also exports z).
import * as z from 'zod';
import { SettingsError } from '../engine/errors.js';
import { KV_CACHE_MODES, REMASKING_SCHEDULES, type GenerationParams, type ModelInfo } from '../engine/protocol.js';
import { validateParams } from '../engine/validate.js';
import { ApiError } from './errors.js';

/** OpenAI allows at most four stop strings. */
export const MAX_STOP_STRINGS = 4;

/** ReMDM's remasking (sampler `remdm` on masked models); what is left out takes the schedule's defaults. */
const RemaskingSchema = z.strictObject({
  schedule: z.enum(REMASKING_SCHEDULES),
  eta: z.number().min(0).max(1).optional(),
  /** loop: the window of time (1 -> 0) in which remasking runs, and the alpha held in it. */
  t_on: z.number().gt(0).lt(1).optional(),
  t_off: z.number().gt(0).lt(1).optional(),
  alpha_on: z.number().gt(0).lt(1).optional(),
});

export const SETTINGS_SHAPE = {
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).lte(1).nullish(),
  /** 0 (or vLLM's -1) turns it off. */
  top_k: z.number().int().min(-1).nullish(),
  seed: z.number().int().min(-(2 ** 31)).max(2 ** 32 - 1).nullish(),
  stop: z
    .union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOP_STRINGS)])
    .nullish(),
  steps: z.number().int().positive().nullish(),
  sampler: z.string().min(1).nullish(),
  block_size: z.number().int().positive().nullish(),
  confidence_threshold: z.number().gt(0).lte(1).nullish(),
  /** The adaptive samplers' bounds, named as their samplers are; ranges in validateParams. */
  confidence_factor: z.number().nullish(),
  entropy_bound: z.number().nullish(),
  remasking: RemaskingSchema.nullish(),
  speculative_k: z.number().int().positive().nullish(),
  /** BD3-LM's variable-length rule: stop once the last entropy_window tokens fall below min_entropy nats; 0 turns it off. */
  min_entropy: z.number().min(0).nullish(),
  entropy_window: z.number().int().min(2).nullish(),
  /** MDLM with a denoiser_kv graph: Fast-dLLM's approximate K/V caches, and how often they are recomputed. */
  kv_cache: z.enum(KV_CACHE_MODES).nullish(),
  cache_refresh: z.number().int().positive().nullish(),
  /** The sub-block length the caches cut the window into; range in validateParams. */
  cache_block: z.number().int().nullish(),
  stream_steps: z.boolean().nullish(),
  /** Step frames carry each masked position's proposal too (implies stream_steps). */
  stream_drafts: z.boolean().nullish(),
  ignore_eos: z.boolean().nullish(),
} as const;

export const SettingsSchema = z.strictObject(SETTINGS_SHAPE);
export type Settings = z.infer<typeof SettingsSchema>;

/** Stop strings as a list, whichever form the request used. */
export function stopStrings(s: Pick<Settings, 'stop'>): string[] {
  if (s.stop == null) return [];
  return typeof s.stop === 'string' ? [s.stop] : s.stop;
}

/**
 * Engine parameters for one sequence of `promptLength` tokens. `prefix` is where the settings
 * sit in the request (`settings.` on the WebSocket, '' in HTTP bodies), for error params.
 */
export function resolveParams(
  s: Settings,
  model: ModelInfo,
  promptLength: number,
  seed: number,
  prefix = '',
): GenerationParams {
  const bad = (field: string, message: string, code = 'invalid_value'): ApiError =>
    ApiError.badRequest(`${prefix}${field}: ${message}`, prefix + field, code);
  const d = model.defaults;

  const room = model.maxLength - promptLength;
  // Block families slide their window: they may write past the context, up to their own limit.
  const most = model.limits.maxTokens ?? room;
  if (room < 1) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${model.maxLength} tokens, but the prompt has ${promptLength} tokens, which leaves no room to generate.`,
      'invalid_request_error',
      null,
      'context_length_exceeded',
    );
  }
  const askedField = s.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const asked = s.max_completion_tokens ?? s.max_tokens ?? null;
  if (asked !== null && asked > most) {
    if (model.limits.maxTokens !== null) {
      throw bad(askedField, `must be at most ${most} for this model (${model.family} slides its window up to that many tokens), got ${asked}`);
    }
    throw new ApiError(
      400,
      `This model's maximum context length is ${model.maxLength} tokens. However, you requested ${promptLength + asked} tokens (${promptLength} in the prompt, ${asked} for the completion). Please reduce the prompt or the completion length.`,
      'invalid_request_error',
      prefix + askedField,
      'context_length_exceeded',
    );
  }
  const maxTokens = asked ?? Math.min(d.maxTokens, most);

  // A remasking setting alone asks for the sampler that reads it; so does an adaptive bound.
  const sampler = s.sampler ?? (s.remasking != null && model.samplers.includes('remdm') ? 'remdm' : adaptiveSampler(s, model) ?? d.sampler);
  const steps = s.steps ?? d.steps;

  // Fields this model does not read at all; their values are validateParams' business.
  if (s.block_size != null && model.limits.blockSizes === null) {
    throw bad('block_size', `model ${model.name} (${model.family}) does not decode in blocks`, 'unsupported_parameter');
  }
  if (s.speculative_k != null && model.limits.maxSpeculativeK === null) {
    throw bad('speculative_k', `model ${model.name} (${model.family}) does not decode speculatively`, 'unsupported_parameter');
  }
  if (s.remasking != null && model.maskId === null) {
    throw bad('remasking', `model ${model.name} (${model.family}) has no [MASK] state to remask into`, 'unsupported_parameter');
  }
  const blockSize = s.block_size ?? d.blockSize;
  const speculativeK = s.speculative_k ?? d.speculativeK;
  const r = s.remasking;
  const remasking = r != null ? { schedule: r.schedule, eta: r.eta, tOn: r.t_on, tOff: r.t_off, alphaOn: r.alpha_on } : d.remasking;

  const minEntropy = s.min_entropy ?? d.minEntropy ?? 0;
  // Left out, the engine's default window applies.
  const entropyWindow = s.entropy_window ?? d.entropyWindow;
  if (s.entropy_window != null && s.entropy_window > most) {
    throw bad('entropy_window', `must be at most ${most}, the most tokens this request can generate, got ${s.entropy_window}`);
  }

  const ignoreEos = s.ignore_eos ?? d.ignoreEos;
  const params: GenerationParams = {
    maxTokens,
    sampler,
    steps,
    temperature: s.temperature ?? d.temperature,
    topP: s.top_p ?? d.topP,
    topK: s.top_k == null ? d.topK : Math.max(0, s.top_k),
    seed,
    ignoreEos,
    stopTokenIds: !ignoreEos && model.eosId !== null ? [model.eosId] : [],
    streamSteps: (s.stream_steps ?? false) || s.stream_drafts === true,
  };
  if (s.stream_drafts === true) params.streamDrafts = true;
  if (s.confidence_factor != null) params.confidenceFactor = s.confidence_factor;
  if (s.entropy_bound != null) params.entropyBound = s.entropy_bound;
  if (blockSize !== undefined) params.blockSize = blockSize;
  const threshold = s.confidence_threshold ?? d.confidenceThreshold;
  if (threshold !== undefined) params.confidenceThreshold = threshold;
  if (remasking !== undefined) params.remasking = remasking;
  if (speculativeK !== undefined) params.speculativeK = speculativeK;
  // The model's default cache mode yields to a sampler it cannot serve (remdm); a request's own does not.
  const kvCache = s.kv_cache ?? (sampler === 'remdm' ? undefined : d.kvCache);
  if (kvCache !== undefined && kvCache !== 'off') params.kvCache = kvCache;
  const cacheRefresh = s.cache_refresh ?? (params.kvCache !== undefined && params.kvCache === d.kvCache ? d.cacheRefresh : undefined);
  if (cacheRefresh !== undefined) params.cacheRefresh = cacheRefresh;
  const cacheBlock = s.cache_block ?? (params.kvCache !== undefined && params.kvCache === d.kvCache ? d.cacheBlock : undefined);
  if (cacheBlock !== undefined) params.cacheBlock = cacheBlock;
  if (minEntropy > 0) {
    params.minEntropy = minEntropy;
    if (entropyWindow !== undefined) params.entropyWindow = entropyWindow;
  }
  try {
    validateParams(model, params);
  } catch (err) {
    if (err instanceof SettingsError) throw bad(err.field, err.detail, err.reason);
    throw err;
  }
  return params;
}

/** The adaptive sampler whose bound the request set (each bound is named as its sampler), if the model has it. */
function adaptiveSampler(s: Settings, model: ModelInfo): string | null {
  const named = s.confidence_factor != null ? 'confidence_factor' : s.entropy_bound != null ? 'entropy_bound' : null;
  return named !== null && model.samplers.includes(named) ? named : null;
}

/** A seed for requests that give none: any 31-bit value. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
