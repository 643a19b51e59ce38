// Small helpers over uWebSockets.js responses. uWS responses die with their connection: once
// onAborted fires, touching `res` is an error, so every helper checks the request's `aborted`
// flag, and writes from async callbacks are corked (one syscall per burst).
import type { HttpResponse } from 'uWebSockets.js';
import { ApiError, STATUS_TEXT } from './errors.js';

export interface RequestState {
  aborted: boolean;
  /** Run when the client goes away (cancel generations, free what they hold). */
  onAbort: (() => void)[];
}

/** Attach the abort handler that every async response needs; call first in a route. */
export function track(res: HttpResponse): RequestState {
  const state: RequestState = { aborted: false, onAbort: [] };
  res.onAborted(() => {
    state.aborted = true;
    for (const fn of state.onAbort) fn();
  });
  return state;
}

/** Collect the request body, refusing it past `limit` bytes. */
export function readBody(res: HttpResponse, state: RequestState, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    state.onAbort.push(() => reject(new Error('client went away')));
    res.onData((chunk, isLast) => {
      if (refused) return;
      size += chunk.byteLength;
      if (size > limit) {
        refused = true;
        reject(new ApiError(413, `request body exceeds ${limit} bytes`, 'invalid_request_error', null, 'request_too_large'));
        return;
      }
      // uWS reuses the chunk's memory after this callback returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

export function sendJson(res: HttpResponse, state: RequestState, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (state.aborted) return;
  state.aborted = true; // the response is finished: nothing may touch it again
  res.cork(() => {
    res.writeStatus(STATUS_TEXT[status] ?? String(status)).writeHeader('Content-Type', 'application/json');
    for (const [k, v] of Object.entries(extraHeaders)) res.writeHeader(k, v);
    res.end(JSON.stringify(body));
  });
}

export function sendError(res: HttpResponse, state: RequestState, err: ApiError): void {
  const headers: Record<string, string> = err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
  if (err.retryAfter !== undefined) headers['Retry-After'] = String(err.retryAfter);
  sendJson(res, state, err.status, err.body(), headers);
}

export function sendText(res: HttpResponse, state: RequestState, status: number, contentType: string, body: string): void {
  if (state.aborted) return;
  state.aborted = true;
  res.cork(() => {
    res.writeStatus(STATUS_TEXT[status] ?? String(status)).writeHeader('Content-Type', contentType).end(body);
  });
}
