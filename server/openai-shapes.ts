// OpenAI's response bodies, for completions or chat, whole (a JSON body) or in pieces (SSE
// chunks): pure functions of what a request run produced, so that the route only picks which.
import { randomUUID } from 'node:crypto';
import type { FinishReason } from '../engine/protocol.js';
import type { UsageBody } from './usage.js';

export type Api = 'completions' | 'chat';

/** What every body and chunk of one response repeats. */
export interface ResponseHead {
  api: Api;
  id: string;
  created: number;
  model: string;
  /** stream_options.include_usage: chunks carry `usage: null` and a last chunk carries usage. */
  includeUsage: boolean;
}

/** A finished choice as OpenAI names it. */
export interface ChoiceResult {
  text: string;
  finish: OpenAIFinish;
  stopReason: string | null;
}

/** OpenAI has no 'cancelled': a sequence stopped early (stop string, client) ended with 'stop'. */
/** vLLM's 'abort' too: a choice the shutdown drain's deadline ended (server/drain.ts). */
export type OpenAIFinish = Exclude<FinishReason, 'cancelled'> | 'abort';

export function openAIFinish(reason: FinishReason): OpenAIFinish {
  return reason === 'cancelled' ? 'stop' : reason;
}

export function responseHead(api: Api, model: string, includeUsage: boolean): ResponseHead {
  return {
    api,
    id: (api === 'chat' ? 'chatcmpl-' : 'cmpl-') + randomUUID().replace(/-/g, ''),
    created: Math.floor(Date.now() / 1000),
    model,
    includeUsage,
  };
}

/** The fields every body and chunk starts with. */
function opening(h: ResponseHead, object: string): Record<string, unknown> {
  return { id: h.id, object, created: h.created, model: h.model, system_fingerprint: null };
}

/** The whole response of a non-streamed request. */
export function completionBody(h: ResponseHead, choices: readonly ChoiceResult[], usage: UsageBody): Record<string, unknown> {
  return {
    ...opening(h, h.api === 'chat' ? 'chat.completion' : 'text_completion'),
    choices: choices.map((c, index) =>
      h.api === 'chat'
        ? { index, message: { role: 'assistant', content: c.text, refusal: null }, logprobs: null, finish_reason: c.finish, stop_reason: c.stopReason }
        : { index, text: c.text, logprobs: null, finish_reason: c.finish, stop_reason: c.stopReason },
    ),
    usage,
  };
}

function chunkOf(h: ResponseHead, choices: unknown[], usage?: UsageBody): Record<string, unknown> {
  return {
    ...opening(h, h.api === 'chat' ? 'chat.completion.chunk' : 'text_completion'),
    choices,
    ...(usage !== undefined ? { usage } : h.includeUsage ? { usage: null } : {}),
  };
}

/** Chat streams open each choice with the assistant's role, as OpenAI's do. */
export function roleChunk(h: ResponseHead, index: number): Record<string, unknown> {
  return chunkOf(h, [{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
}

export function deltaChunk(h: ResponseHead, index: number, text: string): Record<string, unknown> {
  const c = h.api === 'chat'
    ? { index, delta: { content: text }, logprobs: null, finish_reason: null }
    : { index, text, logprobs: null, finish_reason: null };
  return chunkOf(h, [c]);
}

export function finishChunk(h: ResponseHead, index: number, finish: OpenAIFinish, stopReason: string | null): Record<string, unknown> {
  const c = h.api === 'chat'
    ? { index, delta: {}, logprobs: null, finish_reason: finish, stop_reason: stopReason }
    : { index, text: '', logprobs: null, finish_reason: finish, stop_reason: stopReason };
  return chunkOf(h, [c]);
}

/** The last chunk of a stream with include_usage: no choices, the request's usage. */
export function usageChunk(h: ResponseHead, usage: UsageBody): Record<string, unknown> {
  return chunkOf(h, [], usage);
}
