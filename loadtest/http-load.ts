// autocannon against the OpenAI shim: `concurrency` connections, each sending its next request
// as soon as the last one is answered, for a fixed time. autocannon measures whole responses;
// time to first block needs the first body bytes, so each connection is also watched through
// autocannon's client events (request sent, body chunk, response complete).
import autocannon from 'autocannon';
import type { EventEmitter } from 'node:events';
import { summarize, type Sample, type ScenarioResult } from './report.js';

export interface HttpLoadOptions {
  scenario: string;
  base: string;
  path: '/v1/completions' | '/v1/chat/completions';
  concurrency: number;
  /** How long to run; with `total`, ignored (autocannon runs until that many have answered). */
  seconds: number;
  /** Send exactly this many requests and time them all, instead of a fixed time. */
  total?: number;
  /** The body of the n-th request (vary prompts or seeds per request). */
  body(n: number): Record<string, unknown>;
}

/** Text a client could show: a completions `text` or a chat `content` that is not empty. */
const SHOWS_TEXT = /"(?:text|content)":"[^"]/;
const COMPLETION_TOKENS = /"completion_tokens":(\d+)/g;
const CACHED_TOKENS = /"cached_tokens":(\d+)/g;

function lastNumber(re: RegExp, body: string): number {
  let n = 0;
  for (const m of body.matchAll(re)) n = Number(m[1]);
  return n;
}

export async function httpLoad(o: HttpLoadOptions): Promise<ScenarioResult> {
  const samples: Sample[] = [];
  let cached = 0;
  let refused = 0;
  let n = 0;
  // onResponse runs just before the client's 'response' event for the same response (both in
  // one synchronous step of autocannon's parser), so it can hand the parsed body over here.
  let parsed: { ok: boolean; tokens: number; cached: number } | null = null;
  let firstSent = Number.POSITIVE_INFINITY;
  let lastAnswer = 0;

  const t0 = performance.now();
  const instance = autocannon({
    url: o.base,
    connections: o.concurrency,
    ...(o.total !== undefined ? { amount: o.total } : { duration: o.seconds }),
    // A request slower than the whole run still counts as an answer, not a timeout.
    timeout: o.total !== undefined ? 600 : o.seconds + 60,
    requests: [{
      method: 'POST',
      path: o.path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: JSON.stringify(o.body(n++)) }),
      onResponse: (status, body) => {
        // A streamed answer that failed midway ends in an error event, not [DONE] after usage.
        const ok = status === 200 && !body.includes('"error":{');
        parsed = { ok, tokens: lastNumber(COMPLETION_TOKENS, body), cached: lastNumber(CACHED_TOKENS, body) };
        if (status === 429) refused++;
      },
    }],
    setupClient: (client: EventEmitter) => {
      let sent = 0;
      let first = Number.NaN;
      client.on('request', () => {
        sent = performance.now();
        firstSent = Math.min(firstSent, sent);
        first = Number.NaN;
      });
      client.on('body', (chunk: Buffer) => {
        if (Number.isNaN(first) && SHOWS_TEXT.test(chunk.toString('latin1'))) first = performance.now();
      });
      client.on('response', () => {
        const now = performance.now();
        lastAnswer = now;
        const p = parsed;
        parsed = null;
        if (p === null || !p.ok) return;
        samples.push({ latencyMs: now - sent, firstBlockMs: (Number.isNaN(first) ? now : first) - sent, completionTokens: p.tokens });
        cached += p.cached;
      });
    },
  });
  const result = await instance;
  // With a fixed number of requests, autocannon finishes on its next one-second tick: time the
  // requests themselves, first sent to last answered.
  const seconds = o.total !== undefined && lastAnswer > firstSent ? (lastAnswer - firstSent) / 1000 : (performance.now() - t0) / 1000;
  const errors = result.errors + result.timeouts + result.non2xx + (result['2xx'] - samples.length);
  const r = summarize(o.scenario, o.concurrency, seconds, samples, errors);
  r.cachedPromptTokens = cached;
  r.extra = { refused429: refused };
  return r;
}
