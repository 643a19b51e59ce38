// A request's settings turned into one engine sequence per (prompt, choice), before anything
// starts: every 400 a setting can earn is raised here, so a bad request costs the engine nothing.
import type { ServerContext } from './context.js';
import type { GenerationSpec } from './generation.js';
import { resolveParams, stopStrings, type Settings } from './settings.js';

export interface RequestPlan {
  /** Prompt ids, one entry per prompt of the request. */
  prompts: number[][];
  /** Choices per prompt. */
  n: number;
  /** Prompt-major: sequence pi * n + i is choice i of prompt pi. */
  specs: GenerationSpec[];
}

/**
 * Choice i of every prompt gets seed + i, so that `n` choices differ and the same request
 * repeats exactly. `prefix` is where the settings sit in the request, for error params.
 */
export function planSequences(ctx: ServerContext, prompts: number[][], settings: Settings, n: number, seed: number, prefix = ''): RequestPlan {
  const stop = stopStrings(settings);
  const specs: GenerationSpec[] = [];
  for (const prompt of prompts) {
    // Seeds are 32-bit in the engine's RNG; wrap rather than refuse.
    for (let i = 0; i < n; i++) specs.push({ prompt, params: resolveParams(settings, ctx.model, prompt.length, (seed + i) >>> 0, prefix), stop });
  }
  return { prompts, n, specs };
}
