// Errors the engine raises for one request; the server maps them to HTTP/WS errors.

/** A request the engine refuses before it starts (bad settings, full queue). */
export class EngineRequestError extends Error {
  constructor(readonly code: string, message: string, readonly param?: string) {
    super(message);
  }
}
