// The official openai client pointed at a test server: no API key needed, no retries (a retry
// would hide the error a test is looking for).
import OpenAI from 'openai';
import { serve, type Served } from './served.js';

export function openaiClient(base: string): OpenAI {
  return new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
}

export interface ServedClient {
  s: Served;
  client: OpenAI;
  /** The served model's name, as requests must spell it. */
  model: string;
}

/** A test server (see serve) with an openai client on it. */
export async function serveWithClient(opts: Parameters<typeof serve>[0] = {}): Promise<ServedClient> {
  const s = await serve(opts);
  return { s, client: openaiClient(s.base), model: s.engine.model.name };
}
