// @ts-check
// The numbers under each reply: tokens per second, network calls (NFE) and time to first
// block. Measured in the browser from the frames it received, with the server's own counts
// (`usage`) where the server has them.

/**
 * @typedef {{ promptTokens: number | null, completionTokens: number | null, nfe: number | null, cachedTokens: number | null }} UsageView
 * @typedef {{ startedAt: number, firstBlockAt: number | null, doneAt: number, usage: UsageView, tokensSeen: number }} Timing
 */

/** @param {unknown} v */
function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Reads a `done` frame's usage, OpenAI-style names first (the HTTP API's shape).
 * @param {unknown} usage
 * @returns {UsageView}
 */
export function readUsage(usage) {
  const u = /** @type {Record<string, unknown>} */ (usage !== null && typeof usage === 'object' ? usage : {});
  const details = /** @type {Record<string, unknown>} */ (
    u.prompt_tokens_details !== null && typeof u.prompt_tokens_details === 'object' ? u.prompt_tokens_details : {}
  );
  return {
    promptTokens: num(u.prompt_tokens ?? u.promptTokens),
    completionTokens: num(u.completion_tokens ?? u.completionTokens),
    nfe: num(u.nfe),
    cachedTokens: num(details.cached_tokens ?? u.cachedTokens),
  };
}

/**
 * @param {Timing} t times in milliseconds from one clock
 * @returns {{ tokens: number, tokensPerSecond: number | null, nfe: number | null, firstBlockMs: number | null, tokensPerNfe: number | null }}
 */
export function replyStats(t) {
  const tokens = t.usage.completionTokens ?? t.tokensSeen;
  const seconds = (t.doneAt - t.startedAt) / 1000;
  return {
    tokens,
    tokensPerSecond: seconds > 0 ? tokens / seconds : null,
    nfe: t.usage.nfe,
    firstBlockMs: t.firstBlockAt === null ? null : t.firstBlockAt - t.startedAt,
    tokensPerNfe: t.usage.nfe ? tokens / t.usage.nfe : null,
  };
}

/** @param {ReturnType<typeof replyStats>} s */
export function formatStats(s) {
  const parts = [`${s.tokens} tokens`];
  parts.push(s.tokensPerSecond === null ? '– tok/s' : `${s.tokensPerSecond.toFixed(1)} tok/s`);
  parts.push(s.nfe === null ? 'NFE –' : `${s.nfe} NFE`);
  if (s.tokensPerNfe !== null) parts.push(`${s.tokensPerNfe.toFixed(2)} tok/NFE`);
  parts.push(s.firstBlockMs === null ? 'first block –' : `first block ${Math.round(s.firstBlockMs)} ms`);
  return parts.join(' · ');
}
