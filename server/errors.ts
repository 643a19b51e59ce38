// Errors as the OpenAI API shapes them, so that official clients raise the right exception
// class (400 -> BadRequestError, 401 -> AuthenticationError, ...) and show our message.
import type { ZodError } from 'zod';

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    /** The request field to blame, dotted (`messages.0.content`), or null. */
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Seconds a client should wait before retrying (sent as Retry-After); set on 429s. */
  retryAfter: number | undefined;

  /** The server is full: 429 with a Retry-After, as OpenAI's rate limits answer. */
  static overloaded(message: string, retryAfter: number): ApiError {
    const e = new ApiError(429, message, 'rate_limit_error', null, 'queue_full');
    e.retryAfter = retryAfter;
    return e;
  }

  static badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
    return new ApiError(400, message, 'invalid_request_error', param, code);
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** The first zod issue as a 400 that names the field (OpenAI's `param`). */
export function fromZod(err: ZodError, prefix = ''): ApiError {
  const issue = err.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const at = [path, keys[0]].filter((p) => p !== '').join('.');
    return ApiError.badRequest(`Unrecognized request argument supplied: ${keys.join(', ')}`, at ?? null, 'unknown_parameter');
  }
  if (path !== '') message = `${path}: ${message}`;
  return ApiError.badRequest(message, path === '' ? null : path, 'invalid_value');
}
