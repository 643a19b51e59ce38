// The usage object of a response (OpenAI's, plus our `nfe` and `tokens_per_nfe`), added up over a
// request's sequences.
import type { Usage } from '../engine/protocol.js';

export interface UsageBody {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  nfe: number;
  /**
   * Completion tokens per network call, to 3 decimals (0 before any call): what parallel
   * decoding bought. 1 for one token per call; a whole window per call is its length.
   */
  tokens_per_nfe: number;
}

/**
 * The prompt counts once per prompt, however many choices share it (as OpenAI counts n);
 * completion tokens and network calls add up over every sequence. `usages` is prompt-major.
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
    tokens_per_nfe: nfe > 0 ? Math.round((completion / nfe) * 1000) / 1000 : 0,
  };
}
