// WebSocket API at /v1/ws: many generations per socket, each named by the client's id.
// JSON text frames by default; msgpack binary frames when the client asks for the `msgpack`
// subprotocol (incoming frames are read by their own kind: binary = msgpack, text = JSON).
//
// Backpressure policy: below `wsSoftBackpressure` buffered bytes we send at once. Above it we
// queue frames per socket and coalesce: consecutive deltas of one generation merge into one
// frame, and only the newest `step` canvas of a generation is kept (older canvases are stale
// anyway). The queue drains on uWS's `drain`. A reader whose queue still grows past
// `maxPendingBytes` is closed (1008), which cancels its generations. Memory per socket is thus
// bounded and a slow socket never delays anyone else.
import { Packr } from 'msgpackr';
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import type { ServerContext } from './context.js';
import { ApiError, fromZod } from './errors.js';
import { chatPrompt, promptIds } from './prompt-encoding.js';
import { overloaded } from './refusals.js';
import { RequestRun } from './request-run.js';
import { planSequences } from './sequence-plan.js';
import { randomSeed } from './settings.js';
import { tokenTextsFor } from './token-texts.js';
import { type OutFrame, OutboundQueue } from './ws-queue.js';
import { CancelSchema, GenerateSchema } from './ws-schemas.js';

interface SocketData {
  binary: boolean;
  /** Generations by client id; null while the request is still being tokenized. */
  gens: Map<string, RequestRun | null>;
  /** Ids cancelled while still being tokenized: they start cancelled. */
  cancelledEarly: Set<string>;
  queue: OutboundQueue;
  closed: boolean;
}


const packr = new Packr({ useRecords: false });

/** Returns a function that closes every open socket (server shutdown). */
export function attachWebSocket(app: TemplatedApp, ctx: ServerContext, authorize: (req: HttpRequest) => boolean): () => void {
  const open = new Set<WebSocket<SocketData>>();
  app.ws<SocketData>('/v1/ws', {
    maxPayloadLength: ctx.limits.maxFrameBytes * 4,
    // We queue ourselves above the soft limit; uWS's own cap is only the last resort.
    maxBackpressure: ctx.limits.maxPendingBytes * 2,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const key = req.getHeader('sec-websocket-key');
      const protocols = req.getHeader('sec-websocket-protocol').split(',').map((p) => p.trim()).filter(Boolean);
      const ext = req.getHeader('sec-websocket-extensions');
      if (!authorize(req)) {
        res.writeStatus('401 Unauthorized').writeHeader('Content-Type', 'application/json')
          .end(JSON.stringify(new ApiError(401, 'missing or invalid API key', 'authentication_error', null, 'invalid_api_key').body()));
        return;
      }
      if (ctx.drain.draining) {
        const e = ctx.drain.refusal();
        res.writeStatus('503 Service Unavailable').writeHeader('Content-Type', 'application/json').writeHeader('Retry-After', String(e.retryAfter))
          .end(JSON.stringify(e.body()));
        return;
      }
      let chosen = '';
      if (protocols.includes('msgpack')) chosen = 'msgpack';
      else if (protocols.includes('json')) chosen = 'json';
      else if (protocols.length > 0) {
        res.writeStatus('400 Bad Request').writeHeader('Content-Type', 'application/json')
          .end(JSON.stringify(ApiError.badRequest(`unsupported subprotocol(s) ${protocols.join(', ')}; use json or msgpack`, 'sec-websocket-protocol').body()));
        return;
      }
      res.upgrade<SocketData>(
        { binary: chosen === 'msgpack', gens: new Map(), cancelledEarly: new Set(), queue: new OutboundQueue(), closed: false },
        key,
        chosen,
        ext,
        context,
      );
    },
    message: (ws, message, isBinary) => {
      const d = ws.getUserData();
      if (message.byteLength > ctx.limits.maxFrameBytes) {
        send(ws, ctx, { type: 'error', id: null, code: 'frame_too_large', message: `message of ${message.byteLength} bytes exceeds ${ctx.limits.maxFrameBytes}`, param: null });
        return;
      }
      let msg: unknown;
      try {
        msg = isBinary ? packr.unpack(Buffer.from(message)) : JSON.parse(Buffer.from(message).toString('utf8'));
      } catch (err) {
        send(ws, ctx, { type: 'error', id: null, code: 'invalid_message', message: `could not parse the ${isBinary ? 'msgpack' : 'JSON'} message: ${(err as Error).message}`, param: null });
        return;
      }
      void onMessage(ws, ctx, d, msg);
    },
    open: (ws) => {
      open.add(ws);
    },
    drain: (ws) => flushQueue(ws, ctx),
    close: (ws) => {
      open.delete(ws);
      const d = ws.getUserData();
      d.closed = true;
      d.queue.clear();
      for (const g of d.gens.values()) g?.cancel();
    },
  });
  return () => {
    for (const ws of [...open]) ws.end(1001, 'server shutting down');
  };
}

async function onMessage(ws: WebSocket<SocketData>, ctx: ServerContext, d: SocketData, msg: unknown): Promise<void> {
  const type = typeof msg === 'object' && msg !== null ? (msg as { type?: unknown }).type : undefined;
  const rawId = typeof msg === 'object' && msg !== null ? (msg as { id?: unknown }).id : undefined;
  const id = typeof rawId === 'string' ? rawId : null;
  const fail = (e: ApiError): void =>
    send(ws, ctx, { type: 'error', id, code: e.code ?? e.type, message: e.message, param: e.param, ...(e.retryAfter !== undefined ? { retry_after: e.retryAfter } : {}) });

  if (type === 'cancel') {
    const p = CancelSchema.safeParse(msg);
    if (!p.success) return fail(fromZod(p.error));
    if (!d.gens.has(p.data.id)) return fail(ApiError.badRequest(`no generation with id '${p.data.id}' on this socket`, 'id', 'unknown_id'));
    const g = d.gens.get(p.data.id);
    if (g) g.cancel();
    else d.cancelledEarly.add(p.data.id);
    return;
  }
  if (type !== 'generate') {
    return fail(ApiError.badRequest(`unknown message type ${JSON.stringify(type ?? null)}; expected generate or cancel`, 'type', 'unknown_type'));
  }
  const p = GenerateSchema.safeParse(msg);
  if (!p.success) return fail(fromZod(p.error));
  const m = p.data;
  if (d.gens.has(m.id)) return fail(ApiError.badRequest(`generation id '${m.id}' is already in use on this socket`, 'id', 'duplicate_id'));
  if (d.gens.size >= ctx.limits.maxGenerationsPerSocket) {
    return fail(ApiError.badRequest(`at most ${ctx.limits.maxGenerationsPerSocket} generations may run at once on one socket`, null, 'too_many_generations'));
  }
  d.gens.set(m.id, null); // reserve the id while tokenizing
  // Held until its `done` (or error) is sent, so that a shutdown drain waits for it.
  const held = ctx.drain.hold();

  const started = performance.now();
  try {
    const prompt = m.messages ? await chatPrompt(ctx, m.messages) : await promptIds(ctx, m.prompt!, 'prompt');
    const settings = m.settings ?? {};
    const plan = planSequences(ctx, [prompt], settings, 1, settings.seed ?? randomSeed(), 'settings.');
    if (d.closed) {
      held.release();
      return;
    }
    if (ctx.drain.draining) throw ctx.drain.refusal();
    // Step frames carry the canvas as text too (canvas_text), for clients without a tokenizer.
    // (resolveParams decides whether it streams steps: stream_drafts implies them.)
    const texts = plan.specs[0]!.params.streamSteps ? tokenTextsFor(ctx.tokenizer, ctx.model.vocabSize, ctx.model.maskId) : null;
    let run: RequestRun;
    try {
      run = RequestRun.admit(ctx, plan, {
        delta: (_, text, tokens) => send(ws, ctx, { type: 'delta', id: m.id, text, tokens }),
        step: async (_, s) => {
          if (texts !== null && !texts.isReady) await texts.ready();
          send(ws, ctx, {
            type: 'step', id: m.id, step: s.step, offset: s.offset, canvas: s.canvas, marks: s.marks,
            ...(texts !== null ? { canvas_text: texts.canvasText(s.canvas) } : {}),
            ...(s.drafts !== undefined ? { drafts: s.drafts.map((d) => (d < 0 ? null : d)) } : {}),
            ...(s.drafts !== undefined && texts !== null ? { drafts_text: texts.draftText(s.drafts) } : {}),
          });
        },
        finished: (outcomes, usage) => {
          const o = outcomes[0]!;
          d.gens.delete(m.id);
          const seconds = (performance.now() - started) / 1000;
          ctx.metrics.requestSeconds.observe({ api: 'ws' }, seconds);
          ctx.log.info({ api: 'ws', id: m.id, finish: o.reason, tokens: o.usage.completionTokens, nfe: o.usage.nfe, ms: Math.round(seconds * 1000) }, 'generation');
          const cut = o.reason === 'cancelled' && held.cutShort ? ctx.drain.deadlineError() : null;
          if (o.error) send(ws, ctx, { type: 'error', id: m.id, code: o.error.code, message: o.error.message, param: null });
          if (cut) send(ws, ctx, { type: 'error', id: m.id, code: cut.code!, message: cut.message, param: null });
          // Released once the frame leaves the queue: a drain must not close a slow reader's
          // socket while its `done` still waits behind backpressure.
          send(ws, ctx, { type: 'done', id: m.id, finish_reason: cut ? 'abort' : o.reason, stop_reason: o.stopReason, usage }, () => held.release());
        },
      });
    } catch (err) {
      ctx.metrics.requests.inc({ api: 'ws', status: 'rejected' });
      throw err;
    }
    ctx.metrics.requests.inc({ api: 'ws', status: 'accepted' });
    d.gens.set(m.id, run);
    held.onDeadline = () => run.cancel();
    if (d.cancelledEarly.delete(m.id)) run.cancel();
    run.start();
  } catch (err) {
    held.release();
    d.gens.delete(m.id);
    d.cancelledEarly.delete(m.id);
    if (err instanceof ApiError) return fail(err);
    const code = (err as { code?: string }).code ?? 'internal_error';
    ctx.log.error({ err }, 'ws generate failed');
    return fail(code === 'queue_full' ? overloaded(ctx, 1) : new ApiError(500, (err as Error).message, 'server_error', null, code));
  }
}

function encode(ws: WebSocket<SocketData>, frame: OutFrame): string | Uint8Array {
  return ws.getUserData().binary ? packr.pack(frame) : JSON.stringify(frame);
}

/** `onSent` runs once the frame is handed to the socket, or at once when it never can be. */
function send(ws: WebSocket<SocketData>, ctx: ServerContext, frame: OutFrame, onSent?: () => void): void {
  const d = ws.getUserData();
  if (d.closed) {
    onSent?.();
    return;
  }
  if (d.queue.length === 0 && ws.getBufferedAmount() < ctx.limits.wsSoftBackpressure) {
    ws.cork(() => ws.send(encode(ws, frame), d.binary));
    onSent?.();
    return;
  }
  d.queue.push(frame, onSent);
  if (d.queue.bytes > ctx.limits.maxPendingBytes) {
    ctx.log.warn('WebSocket reader too slow: closing');
    d.closed = true;
    for (const g of d.gens.values()) g?.cancel();
    ws.end(1008, 'client too slow: backpressure limit exceeded');
  }
}

function flushQueue(ws: WebSocket<SocketData>, ctx: ServerContext): void {
  const d = ws.getUserData();
  if (d.closed) return;
  ws.cork(() => {
    while (ws.getBufferedAmount() < ctx.limits.wsSoftBackpressure && d.queue.shift((f) => ws.send(encode(ws, f), d.binary)));
  });
}
