// POST /v1/completions and /v1/chat/completions: the OpenAI request and response shapes, JSON
// or SSE, over the shared generation path. Every sequence of a request is planned (and every
// 400 raised) before the first one starts, so a bad request costs the engine nothing.
import { randomUUID } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import type { ErrorMsg, FinishReason, Usage } from '../engine/protocol.js';
import { chatPrompt, overloaded, planSequences, promptIds, type ServerContext, usageBody } from './context.js';
import type { Held } from './drain.js';
import { ApiError, fromZod } from './errors.js';
import { Generation } from './generation.js';
import { type RequestState, readBody, sendError, sendJson } from './http-io.js';
import { ChatRequestSchema, CompletionRequestSchema, contentText } from './openai-schemas.js';
import { randomSeed } from './settings.js';
import { SseStream } from './sse.js';

type Api = 'completions' | 'chat';

/** Status recorded for a request whose client left before the answer (nginx's convention). */
const CLIENT_GONE = 499;

/** The engine's reasons, and vLLM's 'abort' for a generation the shutdown drain ended. */
type ChoiceFinish = Exclude<FinishReason, 'cancelled'> | 'abort';

interface Choice {
  text: string;
  finish: ChoiceFinish | null;
  /** vLLM's stop_reason: the stop string that matched, 'low_entropy', or null. */
  stopReason: string | null;
  usage: Usage | null;
  error?: ErrorMsg;
}

/**
 * A sequence the engine failed, as the error a client sees: settings the engine refused are the
 * client's (400); a full engine queue is a 429 with Retry-After, like the server's own limit; a
 * crash is worth a retry (503); anything else is ours (500).
 */
function engineFailure(ctx: ServerContext, error: ErrorMsg | undefined): ApiError {
  const code = error?.code ?? 'engine_error';
  const message = error?.message ?? 'generation failed in the engine';
  if (code === 'invalid_request') return ApiError.badRequest(message, null, 'invalid_value');
  if (code === 'queue_full') return overloaded(ctx, 1);
  return new ApiError(code === 'engine_crashed' ? 503 : 500, message, 'server_error', null, code);
}

export async function serveOpenAI(ctx: ServerContext, api: Api, res: HttpResponse, state: RequestState): Promise<void> {
  const started = performance.now();
  let status = 200;
  // Held until answered, so that a shutdown drain waits for this request.
  const held = ctx.drain.hold();
  try {
    status = await generate(ctx, api, res, state, held);
  } catch (err) {
    const e = err instanceof ApiError ? err : null;
    if (e === null && state.aborted) return; // the client left while we read its body
    const apiErr = e ?? new ApiError(500, 'internal error', 'server_error', null, 'internal_error');
    if (e === null) ctx.log.error({ err }, 'request failed');
    status = apiErr.status;
    sendError(res, state, apiErr);
  } finally {
    held.release();
    const seconds = (performance.now() - started) / 1000;
    ctx.metrics.requests.inc({ api, status: String(status) });
    ctx.metrics.requestSeconds.observe({ api }, seconds);
    ctx.log.info({ api, status, ms: Math.round(seconds * 1000) }, 'request');
  }
}

/** Serves one request; resolves to the status it was answered with, once it is answered. */
async function generate(ctx: ServerContext, api: Api, res: HttpResponse, state: RequestState, held: Held): Promise<number> {
  const raw = await readBody(res, state, ctx.limits.maxBodyBytes);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw ApiError.badRequest(`The request body is not valid JSON: ${(err as Error).message}`, null, 'invalid_json');
  }

  const parsed = api === 'chat' ? ChatRequestSchema.safeParse(json) : CompletionRequestSchema.safeParse(json);
  if (!parsed.success) throw fromZod(parsed.error);
  const r = parsed.data;
  if (r.model != null && r.model !== ctx.model.name) {
    throw new ApiError(404, `The model '${r.model}' does not exist; this server serves '${ctx.model.name}'.`, 'not_found_error', 'model', 'model_not_found');
  }
  if (r.stream_steps) {
    throw ApiError.badRequest('stream_steps: denoising steps stream over the WebSocket API (/v1/ws) only', 'stream_steps', 'unsupported_parameter');
  }
  if (r.stream_options != null && !r.stream) {
    throw ApiError.badRequest('stream_options: only allowed when stream is true', 'stream_options', 'invalid_value');
  }

  let prompts: number[][];
  if ('messages' in r) {
    prompts = [await chatPrompt(ctx, r.messages.map((m) => ({ role: m.role, content: contentText(m.content) })))];
  } else {
    const p = r.prompt;
    const list: (string | number[])[] =
      typeof p === 'string' ? [p] : p.length > 0 && typeof p[0] === 'number' ? [p as number[]] : (p as (string | number[])[]);
    prompts = await Promise.all(list.map((x, i) => promptIds(ctx, x, list.length > 1 ? `prompt.${i}` : 'prompt')));
  }
  const n = r.n ?? 1;
  if (prompts.length * n > ctx.limits.maxSequencesPerRequest) {
    throw ApiError.badRequest(`prompts x n = ${prompts.length * n} sequences; at most ${ctx.limits.maxSequencesPerRequest} per request`, 'n', 'invalid_value');
  }
  const specs = planSequences(ctx, prompts, r, n, r.seed ?? randomSeed());
  if (state.aborted) return CLIENT_GONE;
  if (ctx.drain.draining) throw ctx.drain.refusal();
  // All of the request's sequences or none: an admitted request is never cut short for room.
  const slots = ctx.admission.tryAdmit(specs.length);
  if (slots === null) throw overloaded(ctx, specs.length);

  const id = (api === 'chat' ? 'chatcmpl-' : 'cmpl-') + randomUUID().replace(/-/g, '');
  const created = Math.floor(Date.now() / 1000);
  const model = ctx.model.name;
  const object = api === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const includeUsage = r.stream === true && r.stream_options?.include_usage === true;
  const choices: Choice[] = specs.map(() => ({ text: '', finish: null, stopReason: null, usage: null }));
  const gens: Generation[] = [];
  let sse: SseStream | null = null;
  let remaining = specs.length;

  const chunk = (index: number, text: string, finish: ChoiceFinish | null, stopReason: string | null = null): Record<string, unknown> => {
    const end = finish === null ? {} : { stop_reason: stopReason };
    const c =
      api === 'chat'
        ? { index, delta: finish === null ? { content: text } : {}, logprobs: null, finish_reason: finish, ...end }
        : { index, text, logprobs: null, finish_reason: finish, ...end };
    return { id, object, created, model, system_fingerprint: null, choices: [c], ...(includeUsage ? { usage: null } : {}) };
  };

  return new Promise<number>((resolve) => {
    const finishAll = (): void => {
      // Nothing has answered the request yet, so an aborted state means the client left.
      const gone = state.aborted;
      const usage = usageBody(prompts, choices.map((c) => c.usage), n);
      const failed = choices.find((c) => c.finish === 'error');
      // A JSON answer cut short is incomplete: a 503 says so, and official clients retry it.
      const cut = !failed && held.cutShort ? ctx.drain.deadlineError() : null;
      const status = gone ? CLIENT_GONE : failed ? engineFailure(ctx, failed.error).status : cut ? cut.status : 200;
      if (sse !== null) {
        if (failed) {
          sse.send(engineFailure(ctx, failed.error).body());
        } else if (cut) {
          sse.send(cut.body());
        } else if (includeUsage) {
          sse.send({ id, object, created, model, system_fingerprint: null, choices: [], usage });
        }
        // Answered once the last event has left (a drain then closes the socket safely).
        void sse.end().then(() => resolve(status));
        return;
      } else if (failed) {
        sendError(res, state, engineFailure(ctx, failed.error));
      } else if (cut) {
        sendError(res, state, cut);
      } else {
        sendJson(res, state, 200, {
          id,
          object: api === 'chat' ? 'chat.completion' : 'text_completion',
          created,
          model,
          system_fingerprint: null,
          choices: choices.map((c, index) =>
            api === 'chat'
              ? { index, message: { role: 'assistant', content: c.text, refusal: null }, logprobs: null, finish_reason: c.finish, stop_reason: c.stopReason }
              : { index, text: c.text, logprobs: null, finish_reason: c.finish, stop_reason: c.stopReason },
          ),
          usage,
        });
      }
      resolve(status);
    };

    specs.forEach((spec, index) => {
      const g = new Generation(ctx.engine, ctx.tokenizer, spec, {
        delta: (text) => {
          if (text === '') return;
          if (sse !== null) sse.send(chunk(index, text, null));
          else choices[index]!.text += text;
        },
        done: (reason, usage, error, stopReason) => {
          if (error) ctx.log.error({ error }, 'sequence failed');
          if (error) choices[index]!.error = error;
          choices[index]!.finish = reason !== 'cancelled' ? reason : held.cutShort ? 'abort' : 'stop';
          choices[index]!.stopReason = stopReason;
          choices[index]!.usage = usage;
          if (sse !== null && reason !== 'error') sse.send(chunk(index, '', choices[index]!.finish, stopReason));
          if (--remaining === 0) finishAll();
        },
      }, ctx.metrics, slots[index]);
      gens.push(g);
    });
    state.onAbort.push(() => {
      for (const g of gens) g.cancel();
    });
    held.onDeadline = () => {
      for (const g of gens) g.cancel();
    };

    try {
      for (const g of gens) g.start();
    } catch (err) {
      for (const g of gens) { g.cancel(); g.abandon(); }
      const code = (err as { code?: string }).code;
      const apiErr =
        code === 'queue_full'
          ? overloaded(ctx, specs.length)
          : new ApiError(500, `could not start generation: ${(err as Error).message}`, 'server_error', null, 'engine_error');
      sendError(res, state, apiErr);
      resolve(apiErr.status);
      // Sequences that did start still finish (cancelled) and call finishAll, which now finds the
      // response already sent.
      return;
    }

    if (r.stream) {
      sse = new SseStream(res, state, ctx.limits.maxPendingBytes, () => {
        ctx.log.warn({ id }, 'SSE reader too slow: disconnecting');
        for (const g of gens) g.cancel();
      });
      sse.open();
      if (api === 'chat') {
        specs.forEach((_, index) => {
          sse!.send({ id, object, created, model, system_fingerprint: null, choices: [{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...(includeUsage ? { usage: null } : {}) });
        });
      }
    }
  });
}
