// The errors a client sees when its request cannot be served: no room (429 with Retry-After,
// whoever ran out of it) or an engine that failed a sequence.
import type { ErrorMsg } from '../engine/protocol.js';
import type { ServerContext } from './context.js';
import { ApiError } from './errors.js';

/** A refusal for lack of room for `n` sequences. */
export function overloaded(ctx: ServerContext, n: number): ApiError {
  const wait = ctx.admission.retryAfterSeconds(n);
  return ApiError.overloaded(`the server is at capacity (${ctx.admission.limit} sequences running or queued); retry in ${wait} s`, wait);
}

/**
 * A sequence the engine failed: settings the engine refused are the client's (400); a full
 * engine queue is a 429 like the server's own limit; a crash is worth a retry (503); anything
 * else is ours (500).
 */
export function engineFailure(ctx: ServerContext, error: ErrorMsg | undefined): ApiError {
  const code = error?.code ?? 'engine_error';
  const message = error?.message ?? 'generation failed in the engine';
  if (code === 'invalid_request') return ApiError.badRequest(message, null, 'invalid_value');
  if (code === 'queue_full') return overloaded(ctx, 1);
  return new ApiError(code === 'engine_crashed' ? 503 : 500, message, 'server_error', null, code);
}
