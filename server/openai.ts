// POST /v1/completions and /v1/chat/completions: read and plan the request (every 400 before
// the first sequence starts, so a bad request costs the engine nothing), run it, and answer
// with the same run whether the client asked for one JSON body or an SSE stream.
import type { HttpResponse } from 'uWebSockets.js';
import type { ServerContext } from './context.js';
import type { Held } from './drain.js';
import { ApiError, fromZod } from './errors.js';
import { type RequestState, readBody, sendError, sendJson } from './http-io.js';
import { type ChatRequest, ChatRequestSchema, type CompletionRequest, CompletionRequestSchema } from './openai-schemas.js';
import {
  type Api, completionBody, deltaChunk, finishChunk, openAIFinish, type ResponseHead, responseHead, roleChunk, usageChunk,
} from './openai-shapes.js';
import { chatPrompt, type PromptInput, promptIds } from './prompt-encoding.js';
import { engineFailure, overloaded } from './refusals.js';
import { RequestRun, type RunListener } from './request-run.js';
import { planSequences, type RequestPlan } from './sequence-plan.js';
import { randomSeed } from './settings.js';
import { SseStream } from './sse.js';

/** Status recorded for a request whose client left before the answer (nginx's convention). */
const CLIENT_GONE = 499;

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
  const r = await readRequest(ctx, api, res, state);
  const plan = await planRequest(ctx, r);
  if (state.aborted) return CLIENT_GONE;
  if (ctx.drain.draining) throw ctx.drain.refusal();
  const head = responseHead(api, ctx.model.name, r.stream === true && r.stream_options?.include_usage === true);
  const answer = r.stream ? sseAnswer(ctx, head, res, state, held, () => run.cancel()) : jsonAnswer(ctx, head, res, state, held);
  const run = RequestRun.admit(ctx, plan, answer.listener);
  state.onAbort.push(() => run.cancel());
  held.onDeadline = () => run.cancel();
  try {
    run.start();
  } catch (err) {
    const code = (err as { code?: string }).code;
    const apiErr =
      code === 'queue_full'
        ? overloaded(ctx, plan.specs.length)
        : new ApiError(500, `could not start generation: ${(err as Error).message}`, 'server_error', null, 'engine_error');
    sendError(res, state, apiErr);
    return apiErr.status;
  }
  answer.open?.(plan.specs.length);
  return answer.status;
}

/** The body, validated: its shape, the model it names, and options that only go together. */
async function readRequest(ctx: ServerContext, api: Api, res: HttpResponse, state: RequestState): Promise<ChatRequest | CompletionRequest> {
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
  if (r.stream_drafts) {
    throw ApiError.badRequest('stream_drafts: drafts ride the step frames of the WebSocket API (/v1/ws) only', 'stream_drafts', 'unsupported_parameter');
  }
  if (r.stream_options != null && !r.stream) {
    throw ApiError.badRequest('stream_options: only allowed when stream is true', 'stream_options', 'invalid_value');
  }
  return r;
}

/** The request's prompts as ids and one sequence per (prompt, choice). */
async function planRequest(ctx: ServerContext, r: ChatRequest | CompletionRequest): Promise<RequestPlan> {
  let prompts: number[][];
  if ('messages' in r) {
    prompts = [await chatPrompt(ctx, r.messages)];
  } else {
    const p = r.prompt;
    const list: PromptInput[] = typeof p === 'string' ? [p] : p.length > 0 && typeof p[0] === 'number' ? [p as number[]] : (p as PromptInput[]);
    prompts = await Promise.all(list.map((x, i) => promptIds(ctx, x, list.length > 1 ? `prompt.${i}` : 'prompt')));
  }
  const n = r.n ?? 1;
  if (prompts.length * n > ctx.limits.maxSequencesPerRequest) {
    throw ApiError.badRequest(`prompts x n = ${prompts.length * n} sequences; at most ${ctx.limits.maxSequencesPerRequest} per request`, 'n', 'invalid_value');
  }
  return planSequences(ctx, prompts, r, n, r.seed ?? randomSeed());
}

/** How a run is answered: its listener, what to send once it started, the final status. */
interface Answer {
  listener: RunListener;
  open?(sequences: number): void;
  status: Promise<number>;
}

/** The status of a finished run: nothing answered it before, so an aborted state means the client left. */
function finalStatus(state: RequestState, failed: ApiError | null): number {
  return state.aborted ? CLIENT_GONE : failed !== null ? failed.status : 200;
}

/** One JSON body once every choice is done (or the first engine failure as the error body). */
function jsonAnswer(ctx: ServerContext, head: ResponseHead, res: HttpResponse, state: RequestState, held: Held): Answer {
  const texts: string[] = [];
  let resolve!: (status: number) => void;
  const status = new Promise<number>((r) => (resolve = r));
  return {
    status,
    listener: {
      delta: (index, text) => {
        texts[index] = (texts[index] ?? '') + text;
      },
      finished: (outcomes, usage) => {
        const f = outcomes.find((o) => o.reason === 'error');
        // A JSON answer the drain's deadline cut short is incomplete: a 503 says so, and the
        // official clients retry it by themselves.
        const failed = f ? engineFailure(ctx, f.error) : held.cutShort ? ctx.drain.deadlineError() : null;
        const code = finalStatus(state, failed);
        if (failed !== null) sendError(res, state, failed);
        else sendJson(res, state, 200, completionBody(head, outcomes.map((o, i) => ({ text: texts[i] ?? '', finish: openAIFinish(o.reason), stopReason: o.stopReason })), usage));
        resolve(code);
      },
    },
  };
}

/** Server-sent events: a chunk per delta and per finished choice, then usage and [DONE]. */
function sseAnswer(ctx: ServerContext, head: ResponseHead, res: HttpResponse, state: RequestState, held: Held, cancel: () => void): Answer {
  const sse = new SseStream(res, state, ctx.limits.maxPendingBytes, () => {
    ctx.log.warn({ id: head.id }, 'SSE reader too slow: disconnecting');
    cancel();
  });
  let resolve!: (status: number) => void;
  const status = new Promise<number>((r) => (resolve = r));
  return {
    status,
    open: (sequences) => {
      sse.open();
      if (head.api === 'chat') for (let i = 0; i < sequences; i++) sse.send(roleChunk(head, i));
    },
    listener: {
      delta: (index, text) => {
        if (text !== '') sse.send(deltaChunk(head, index, text));
      },
      choiceDone: (index, o) => {
        // vLLM's 'abort' for a choice the drain's deadline ended.
        const finish = o.reason === 'cancelled' && held.cutShort ? 'abort' : openAIFinish(o.reason);
        if (o.reason !== 'error') sse.send(finishChunk(head, index, finish, o.stopReason));
      },
      finished: (outcomes, usage) => {
        const f = outcomes.find((o) => o.reason === 'error');
        const failed = f ? engineFailure(ctx, f.error) : held.cutShort ? ctx.drain.deadlineError() : null;
        const code = finalStatus(state, failed);
        if (failed !== null) sse.send(failed.body());
        else if (head.includeUsage) sse.send(usageChunk(head, usage));
        // Answered once the last event has left (a drain then closes the socket safely).
        void sse.end().then(() => resolve(code));
      },
    },
  };
}
