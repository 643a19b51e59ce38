// Admission control through the real server and the tiny model: past the server's limit of
// sequences (running + queued) an HTTP request gets 429 with Retry-After and an OpenAI error
// body, a WebSocket generate gets an `error` frame; a request is admitted whole or not at all;
// and every request that was admitted finishes in full.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { startEngine } from '../engine/client.js';
import { Admission } from '../server/admission.js';
import type { Engine } from '../engine/api.js';
import { scrape, serve, TEST_MODEL_DIR, waitIdle, type Served } from './helpers/served.js';

const LIMIT = 3;
let engine: Engine;
let s: Served;
let client: OpenAI;
before(async () => {
  // The engine itself would take 2 + 8; the server's limit (3) is what refuses here.
  engine = await startEngine({ modelDir: TEST_MODEL_DIR, device: 'cpu', threads: 1, maxBatch: 2, maxQueue: 8 });
  s = await serve({ engine, limits: { maxLiveSequences: LIMIT } });
  // The openai client retries 429s by itself; we want to see them.
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await s.close();
  await engine.close();
});

/** Long enough (hundreds of network calls) that the probes below land while it runs. */
const LONG = { prompt: 'Once upon a time', max_tokens: 64, steps: 96, ignore_eos: true, sampler: 'ddpm' } as const;

async function waitLive(n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await scrape(s.base)).get('dlm_live_sequences') === n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never saw ${n} live sequences`);
}

function isQueueFull(err: unknown): boolean {
  return err instanceof OpenAI.RateLimitError && err.status === 429 && err.code === 'queue_full' && err.type === 'rate_limit_error'
    && Number.isInteger(Number(err.headers?.get('retry-after'))) && Number(err.headers?.get('retry-after')) >= 1;
}

async function wsFrames(url: string, msg: unknown, until: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  const frames: Record<string, unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no final frame; got ${JSON.stringify(frames)}`)), 20_000);
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString('utf8')) as Record<string, unknown>;
      frames.push(f);
      if (until(f)) { clearTimeout(t); resolve(); }
    });
    ws.send(JSON.stringify(msg));
  });
  ws.close();
  return frames;
}

test('past the limit: 429 + Retry-After over HTTP (JSON and SSE), an error frame over WebSocket; the admitted finish in full', async () => {
  const model = engine.model.name;
  const admitted = [
    client.completions.create({ model, ...LONG, seed: 1 }),
    client.completions.create({ model, ...LONG, seed: 2 }),
    // A streaming one counts the same.
    (async () => {
      const stream = await client.completions.create({ model, ...LONG, seed: 3, stream: true, stream_options: { include_usage: true } });
      let usage: OpenAI.CompletionUsage | undefined;
      let text = '';
      for await (const c of stream) {
        text += c.choices[0]?.text ?? '';
        if (c.usage) usage = c.usage;
      }
      return { text, usage };
    })(),
  ] as const;
  await waitLive(LIMIT);

  // Raw HTTP: status, header and the OpenAI-shaped body.
  const raw = await fetch(`${s.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 4 }) });
  assert.equal(raw.status, 429);
  const retryAfter = Number(raw.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${raw.headers.get('retry-after')}`);
  const body = (await raw.json()) as { error: { message: string; type: string; param: unknown; code: string } };
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(body.error.code, 'queue_full');
  assert.match(body.error.message, /capacity/);

  // The official client: JSON, SSE (refused before the stream opens) and chat.
  await assert.rejects(client.completions.create({ model, prompt: 'x', max_tokens: 4 }), isQueueFull);
  await assert.rejects(client.completions.create({ model, prompt: 'x', max_tokens: 4, stream: true }), isQueueFull);
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }), isQueueFull);

  // WebSocket: an error frame naming the generation, with the same hint; the socket stays open.
  const frames = await wsFrames(`${s.base.replace('http', 'ws')}/v1/ws`, { type: 'generate', id: 'g1', prompt: 'hi', settings: { max_tokens: 4 } },
    (f) => f.type === 'error' || f.type === 'done');
  assert.equal(frames.length, 1, JSON.stringify(frames));
  assert.equal(frames[0]!.type, 'error');
  assert.equal(frames[0]!.id, 'g1');
  assert.equal(frames[0]!.code, 'queue_full');
  assert.ok(Number(frames[0]!.retry_after) >= 1);

  // Nothing admitted was dropped: every token of every admitted request arrives.
  const [a, b, c] = await Promise.all(admitted);
  assert.equal(a.usage!.completion_tokens, 64);
  assert.equal(b.usage!.completion_tokens, 64);
  assert.equal(c.usage!.completion_tokens, 64);
  assert.equal(a.choices[0]!.finish_reason, 'length');

  // The refusals are counted, and room frees up once they end.
  const m = await waitIdle(s.base);
  assert.equal(m.get('dlm_requests_total{api="completions",status="429"}'), 3);
  assert.equal(m.get('dlm_requests_total{api="ws",status="rejected"}'), 1);
  const ok = await wsFrames(`${s.base.replace('http', 'ws')}/v1/ws`, { type: 'generate', id: 'g2', prompt: 'hi', settings: { max_tokens: 4 } },
    (f) => f.type === 'error' || f.type === 'done');
  assert.equal(ok.at(-1)!.type, 'done', JSON.stringify(ok));
});

test('a request is admitted whole or not at all: n = 2 is refused where n = 1 still fits', async () => {
  const model = engine.model.name;
  const running = [client.completions.create({ model, ...LONG, seed: 4 }), client.completions.create({ model, ...LONG, seed: 5 })];
  await waitLive(2);
  await assert.rejects(client.completions.create({ model, prompt: 'x', max_tokens: 4, n: 2 }), isQueueFull);
  // The refused request started nothing: one slot is still free, and it is taken.
  assert.equal((await scrape(s.base)).get('dlm_live_sequences'), 2);
  const one = await client.completions.create({ model, prompt: 'x', max_tokens: 4 });
  assert.equal(one.usage!.completion_tokens, 4);
  for (const r of await Promise.all(running)) assert.equal(r.usage!.completion_tokens, 64);
  await waitIdle(s.base);
  // All slots came back: a full-size request fits again.
  const three = await client.completions.create({ model, prompt: 'x', max_tokens: 4, n: LIMIT });
  assert.equal(three.choices.length, LIMIT);
});

test('Admission: all or nothing, slots come back once each, Retry-After follows the completion rate', () => {
  const a = new Admission(3);
  const two = a.tryAdmit(2)!;
  assert.equal(a.tryAdmit(2), null, 'two more do not fit in one');
  assert.equal(a.inFlight, 2);
  const one = a.tryAdmit(1)!;
  assert.equal(a.inFlight, 3);
  // Nothing finished lately: the default hint.
  assert.equal(a.retryAfterSeconds(1, performance.now()), 10);
  two[0]!.release();
  two[0]!.release(); // a second release gives nothing back
  assert.equal(a.inFlight, 2);
  two[1]!.release();
  one[0]!.release();
  assert.equal(a.inFlight, 0);
  // Three finished within about a second: room for one more comes in about a third of a second,
  // rounded up to the header's whole second; asking for many more waits proportionally longer.
  const now = performance.now() + 1000;
  assert.equal(a.retryAfterSeconds(1, now), 1);
  const full = new Admission(1);
  for (let i = 0; i < 2; i++) full.tryAdmit(1)?.[0]!.release();
  full.tryAdmit(1);
  const t = performance.now() + 3900; // two completions over 3.9 s: about 0.51 per second
  assert.equal(full.retryAfterSeconds(1, t), 2);
  assert.equal(full.retryAfterSeconds(5, t), 10);
  // Completions older than the window no longer count.
  assert.equal(full.retryAfterSeconds(1, t + 20_000), 10);
  assert.throws(() => new Admission(0), RangeError);
});
