// What every front end (HTTP, WebSocket) shares: the engine, the model's facts, the tokenizer,
// metrics, logs and limits; and the two steps they all take before generating: prompt text to
// ids, and a request's settings to one engine sequence per choice.
import type { Logger } from 'pino';
import type { Engine } from '../engine/api.js';
import type { ModelInfo, Usage } from '../engine/protocol.js';
import type { ChatMessage, ChatTemplate } from '../tokenizer/chat.js';
import { applyChatTemplate } from '../tokenizer/chat.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { Admission } from './admission.js';
import type { Drain } from './drain.js';
import { ApiError } from './errors.js';
import type { GenerationSpec } from './generation.js';
import type { Metrics } from './metrics.js';
import { resolveParams, stopStrings, type Settings } from './settings.js';

export interface Limits {
  /** Largest HTTP request body. */
  maxBodyBytes: number;
  /** Largest WebSocket message we parse; bigger ones get an error frame. */
  maxFrameBytes: number;
  /** Bytes queued for one slow reader (SSE response or WebSocket) before we disconnect it. */
  maxPendingBytes: number;
  /** WebSocket buffered bytes above which we queue (and coalesce) instead of sending. */
  wsSoftBackpressure: number;
  /** Sequences one HTTP request may start (prompts x n). */
  maxSequencesPerRequest: number;
  /** Generations running at once on one WebSocket. */
  maxGenerationsPerSocket: number;
  /**
   * Sequences admitted at once, decoding or queued (the engine's max batch + max queue);
   * beyond it requests get 429 / a WebSocket error frame (server/admission.ts).
   */
  maxLiveSequences: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 1 << 20,
  maxFrameBytes: 1 << 20,
  maxPendingBytes: 4 << 20,
  wsSoftBackpressure: 256 << 10,
  maxSequencesPerRequest: 64,
  maxGenerationsPerSocket: 256,
  // The engine's own defaults: max batch 16 + max queue 256 (engine/core.ts).
  maxLiveSequences: 16 + 256,
};

export interface ServerContext {
  engine: Engine;
  model: ModelInfo;
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate;
  metrics: Metrics;
  log: Logger;
  limits: Limits;
  admission: Admission;
  /** Set once SIGTERM came: admits nothing new (server/drain.ts). */
  drain: Drain;
}

export type PromptInput = string | number[];

/** Prompt ids, checking caller-supplied ids against the vocabulary. */
export async function promptIds(ctx: ServerContext, prompt: PromptInput, param: string): Promise<number[]> {
  if (typeof prompt === 'string') return ctx.tokenizer.encode(prompt);
  const bad = prompt.find((t) => t >= ctx.model.vocabSize);
  if (bad !== undefined) throw ApiError.badRequest(`${param}: token id ${bad} is outside the vocabulary (${ctx.model.vocabSize})`, param, 'invalid_value');
  return prompt;
}

/** A refusal for lack of room for `n` sequences (429 + Retry-After), whoever ran out of it. */
export function overloaded(ctx: ServerContext, n: number): ApiError {
  const wait = ctx.admission.retryAfterSeconds(n);
  return ApiError.overloaded(`the server is at capacity (${ctx.admission.limit} sequences running or queued); retry in ${wait} s`, wait);
}

export function chatPrompt(ctx: ServerContext, messages: ChatMessage[]): Promise<number[]> {
  return ctx.tokenizer.encode(applyChatTemplate(messages, ctx.chatTemplate));
}

/**
 * One engine sequence per (prompt, choice): choice i of every prompt gets seed + i, so that
 * `n` choices differ and the same request repeats exactly.
 */
export function planSequences(ctx: ServerContext, prompts: number[][], settings: Settings, n: number, seed: number, prefix = ''): GenerationSpec[] {
  const stop = stopStrings(settings);
  const specs: GenerationSpec[] = [];
  for (const prompt of prompts) {
    // Seeds are 32-bit in the engine's RNG; wrap rather than refuse.
    for (let i = 0; i < n; i++) specs.push({ prompt, params: resolveParams(settings, ctx.model, prompt.length, (seed + i) >>> 0, prefix), stop });
  }
  return specs;
}

/** OpenAI's usage object plus our `nfe`. */
export interface UsageBody {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  nfe: number;
}

/**
 * Usage of a request: the prompt counts once per prompt, however many choices share it (as
 * OpenAI counts n); completion tokens and network calls add up over every sequence.
 */
export function usageBody(prompts: number[][], usages: readonly (Usage | null)[], n: number): UsageBody {
  let completion = 0;
  let nfe = 0;
  let cached = 0;
  prompts.forEach((p, pi) => {
    let promptCached = 0;
    for (let i = 0; i < n; i++) {
      const u = usages[pi * n + i];
      if (!u) continue;
      completion += u.completionTokens;
      nfe += u.nfe;
      promptCached = Math.max(promptCached, Math.min(u.cachedTokens, p.length));
    }
    cached += promptCached;
  });
  const prompt = prompts.reduce((a, p) => a + p.length, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
    nfe,
  };
}
