// The HTTP + WebSocket server around one engine: routes, auth, and lifecycle. createServer is
// what `npm start` runs and what the tests start on loopback (port 0 picks a free port).
import type { Logger } from 'pino';
import uWS from 'uWebSockets.js';
import type { Engine } from '../engine/api.js';
import type { ChatTemplate } from '../tokenizer/chat.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { Admission } from './admission.js';
import { ApiKeys } from './auth.js';
import type { ServerContext } from './context.js';
import { Drain, type DrainReport } from './drain.js';
import { ApiError } from './errors.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { sendError, sendJson, sendText, track } from './http-io.js';
import { Metrics } from './metrics.js';
import { serveOpenAI } from './openai.js';
import { mountChatPage } from './static.js';
import { attachWebSocket } from './ws.js';

export interface ServerOptions {
  engine: Engine;
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate;
  log: Logger;
  host?: string;
  /** 0 = any free port. */
  port: number;
  apiKeys?: string[];
  limits?: Partial<Limits>;
  /** Serve the browser chat page at / (default true). */
  chat?: boolean;
}

export interface RunningServer {
  port: number;
  metrics: Metrics;
  /**
   * Graceful shutdown: admit nothing new, let what runs finish for up to `seconds`, end the
   * rest, then close every socket (WebSockets with 1001). The engine is the caller's to close.
   */
  drain(seconds: number): Promise<DrainReport>;
  /** Requests and WebSocket generations not yet answered. */
  inFlight(): number;
  close(): void;
}

export function createServer(opts: ServerOptions): Promise<RunningServer> {
  const model = opts.engine.model;
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const ctx: ServerContext = {
    engine: opts.engine,
    model,
    tokenizer: opts.tokenizer,
    chatTemplate: opts.chatTemplate,
    metrics: new Metrics(model),
    log: opts.log,
    limits,
    admission: new Admission(limits.maxLiveSequences),
    drain: new Drain(),
  };
  const unfollow = ctx.metrics.follow(ctx.engine);
  const keys = new ApiKeys(opts.apiKeys ?? []);
  const created = Math.floor(Date.now() / 1000);
  const app = uWS.App();

  /** Wrap a route with the abort handler, the API key check and error mapping. */
  const route = (needsKey: boolean, fn: (res: uWS.HttpResponse, state: ReturnType<typeof track>, req: uWS.HttpRequest) => void | Promise<void>) =>
    (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      const state = track(res);
      if (needsKey && !keys.check(keys.fromRequest(req, false))) {
        sendError(res, state, new ApiError(401, 'Incorrect or missing API key: send Authorization: Bearer <key>.', 'authentication_error', null, 'invalid_api_key'));
        return;
      }
      Promise.resolve(fn(res, state, req)).catch((err: unknown) => {
        ctx.log.error({ err }, 'route failed');
        sendError(res, state, err instanceof ApiError ? err : new ApiError(500, 'internal error', 'server_error', null, 'internal_error'));
      });
    };

  const modelCard = { id: model.name, object: 'model', created, owned_by: 'dlm-serve', max_model_len: model.maxLength, family: model.family, device: model.device, precision: model.precision };

  // Healthy = the engine process is up and, with work in flight, its ticks keep coming (no
  // network call, no round trip: the engine pushes its stats after every tick).
  app.get('/health', route(false, (res, state) => {
    // Draining: fail readiness at once, so that load balancers stop sending before we close.
    if (ctx.drain.draining) {
      sendJson(res, state, 503, { status: 'draining', model: model.name, device: model.device, precision: model.precision, in_flight: ctx.drain.inFlight });
      return;
    }
    const alive = ctx.engine.healthy();
    sendJson(res, state, alive ? 200 : 503, { status: alive ? 'ok' : 'unavailable', model: model.name, device: model.device, precision: model.precision });
  }));
  // Open like /health (vLLM does the same): Prometheus and inference gateways scrape without
  // keys, and the series carry no request content.
  app.get('/metrics', route(false, async (res, state) => {
    sendText(res, state, 200, ctx.metrics.registry.contentType, await ctx.metrics.registry.metrics());
  }));
  app.get('/v1/models', route(true, (res, state) => sendJson(res, state, 200, { object: 'list', data: [modelCard] })));
  app.get('/v1/models/:id', route(true, (res, state, req) => {
    const id = decodeURIComponent(req.getParameter(0) ?? '');
    if (id === model.name) sendJson(res, state, 200, modelCard);
    else sendError(res, state, new ApiError(404, `The model '${id}' does not exist`, 'not_found_error', 'model', 'model_not_found'));
  }));
  app.post('/v1/completions', route(true, (res, state) => serveOpenAI(ctx, 'completions', res, state)));
  app.post('/v1/chat/completions', route(true, (res, state) => serveOpenAI(ctx, 'chat', res, state)));
  const closeSockets = attachWebSocket(app, ctx, (req) => keys.check(keys.fromRequest(req, true)));
  // The page is public (it holds no data); what it calls checks the API key as for any client.
  mountChatPage(app, { enabled: opts.chat ?? true });
  app.any('/*', route(false, (res, state, req) => {
    const url = req.getUrl();
    const known = ['/health', '/metrics', '/v1/models', '/v1/completions', '/v1/chat/completions'].includes(url);
    if (known) sendError(res, state, new ApiError(405, `${req.getMethod().toUpperCase()} is not allowed on ${url}`, 'invalid_request_error', null, 'method_not_allowed'));
    else sendError(res, state, new ApiError(404, `no route ${url}`, 'not_found_error', null, 'not_found'));
  }));

  return new Promise((resolve, reject) => {
    app.listen(opts.host ?? '0.0.0.0', opts.port, (socket) => {
      if (!socket) {
        reject(new Error(`could not listen on ${opts.host ?? '0.0.0.0'}:${opts.port}`));
        return;
      }
      let closed = false;
      const close = (): void => {
        // Once: closing uWS's listen socket twice crashes the process (seen: SIGSEGV when a
        // drain had closed the server and its owner closed it again).
        if (closed) return;
        closed = true;
        unfollow();
        uWS.us_listen_socket_close(socket);
        closeSockets();
        // App.close (uWS >= 20.24, missing from this build's typings) also drops idle
        // keep-alive connections, which would otherwise hold the process for their timeout.
        (app as unknown as { close?: () => void }).close?.();
      };
      resolve({
        port: uWS.us_socket_local_port(socket),
        metrics: ctx.metrics,
        drain: async (seconds) => {
          ctx.metrics.draining.set(1);
          // The listening socket stays open meanwhile: late clients get a clear 503, not a refusal to connect.
          const report = await ctx.drain.run(seconds);
          close();
          return report;
        },
        inFlight: () => ctx.drain.inFlight,
        close,
      });
    });
  });
}
