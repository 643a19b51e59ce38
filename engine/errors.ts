// Errors the engine raises for one request; the server maps them to HTTP/WS errors.

/** A request the engine refuses before it starts (duplicate id, full queue, bad settings). */
export class EngineRequestError extends Error {
  constructor(readonly code: string, message: string, readonly param?: string) {
    super(message);
  }
}

/**
 * A setting the model cannot take (engine/validate.ts): the request field to blame, as the
 * request spells it (`remasking.t_off`), why, and whether the value is wrong or the field does
 * not apply to this model at all (OpenAI's `invalid_value` / `unsupported_parameter` codes).
 */
export class SettingsError extends EngineRequestError {
  declare readonly param: string;

  constructor(
    readonly field: string,
    readonly detail: string,
    readonly reason: 'invalid_value' | 'unsupported_parameter' = 'invalid_value',
  ) {
    super('invalid_request', `${field}: ${detail}`, field);
  }
}
