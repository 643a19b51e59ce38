// Graceful drain through the real server process and real signals (server/drain.ts): what runs
// at SIGTERM finishes whole, what comes later is refused with a 503 a client can act on, what
// outlives --drain-seconds is ended with a reason, and the process exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { openaiClient } from './helpers/openai.js';
import { scrape } from './helpers/served.js';
import { freePort, SpawnedServer } from './helpers/spawned-server.js';
import { type Config, ConfigError, parseConfig, USAGE } from '../server/config.js';

// Long enough to be in flight when the signal comes (the first test checks that it was; its
// drain is long, so a loaded machine only makes it slower): every step is a network call (plain
// ddpm never skips one), and --max-batch 1 runs the later tests' sequences one by one.
const SETTINGS = { max_tokens: 96, steps: 256, sampler: 'ddpm', seed: 7, ignore_eos: true };
const LONG = { prompt: 'The king', ...SETTINGS };
const LONG_WS = { type: 'generate', id: 'long', prompt: LONG.prompt, settings: SETTINGS };

interface WsRun {
  text: string;
  frames: Record<string, unknown>[];
  closeCode: Promise<number>;
  send(frame: Record<string, unknown>): void;
  /** Resolves with the first frame of `type` for generation `id`. */
  next(type: string, id: string): Promise<Record<string, unknown>>;
}

async function openWs(base: string): Promise<WsRun> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const frames: Record<string, unknown>[] = [];
  const waiters: { type: string; id: string; resolve(f: Record<string, unknown>): void; reject(e: Error): void }[] = [];
  let closed = false;
  const missing = (type: string, id: string) => new Error(`the socket closed without a ${type} frame for ${id}; frames: ${JSON.stringify(frames.filter((f) => f.type !== 'delta'))}`);
  const run: WsRun = {
    text: '',
    frames,
    closeCode: new Promise((resolve) => ws.once('close', (code) => {
      closed = true;
      // A frame that never comes is a failure that names it, not a promise left pending.
      for (const w of waiters.splice(0)) w.reject(missing(w.type, w.id));
      resolve(code);
    })),
    send: (f) => ws.send(JSON.stringify(f)),
    next: (type, id) => {
      const seen = frames.find((f) => f.type === type && f.id === id);
      if (seen) return Promise.resolve(seen);
      if (closed) return Promise.reject(missing(type, id));
      return new Promise((resolve, reject) => waiters.push({ type, id, resolve, reject }));
    },
  };
  ws.on('message', (data) => {
    const f = JSON.parse(String(data)) as Record<string, unknown>;
    frames.push(f);
    if (f.type === 'delta' && f.id === 'long') run.text += String(f.text);
    for (const w of waiters.filter((x) => x.type === f.type && x.id === f.id)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(f);
    }
  });
  return run;
}

/** Resolves once the server has `n` sequences admitted and not finished. */
async function untilLive(base: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await scrape(base)).get('dlm_live_sequences')! < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} sequences live after 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sseBody(base: string, body: Record<string, unknown>): Promise<{ status: number; raw: string }> {
  const r = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  return { status: r.status, raw: await r.text() };
}

function sseEvents(raw: string): Record<string, unknown>[] {
  return raw.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
}

test('drain: SIGTERM lets JSON, SSE and WebSocket generations in flight finish whole, refuses new work with 503, exits 0', async () => {
  const server = new SpawnedServer(await freePort(), ['--max-batch', '4', '--drain-seconds', '300']);
  await server.start();
  try {
    const client = openaiClient(server.base);
    // The same seeded request on the undisturbed server: what the drained ones must equal.
    const model = (await client.models.list()).data[0]!.id;
    const request = { model, ...LONG } as OpenAI.CompletionCreateParamsNonStreaming;
    const want = await client.completions.create(request);
    assert.equal(want.choices[0]!.finish_reason, 'length');

    const ws = await openWs(server.base);
    ws.send(LONG_WS);
    const json = client.completions.create(request);
    const sse = sseBody(server.base, LONG);
    await untilLive(server.base, 3);

    const signalled = Date.now();
    server.signal('SIGTERM');
    // Readiness fails at once.
    let health: Response;
    do health = await fetch(`${server.base}/health`);
    while (health.status === 200 && Date.now() - signalled < 5000);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'draining');

    // New work is refused, with the OpenAI error body and a Retry-After.
    const late = await fetch(`${server.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'late', max_tokens: 2 }) });
    assert.equal(late.status, 503);
    assert.ok(Number(late.headers.get('retry-after')) >= 1);
    const lateBody = (await late.json()) as { error: { message: string; type: string; param: unknown; code: string } };
    assert.deepEqual(Object.keys(lateBody.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(lateBody.error.code, 'server_draining');
    assert.equal(lateBody.error.type, 'server_error');
    await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'late' }], max_tokens: 2 }), (e: unknown) => e instanceof OpenAI.APIError && e.status === 503);
    ws.send({ type: 'generate', id: 'late', prompt: 'late', settings: { max_tokens: 2 } });
    const refused = await ws.next('error', 'late');
    assert.equal(refused.code, 'server_draining');
    const upgrade = await new Promise<number>((resolve) => {
      const other = new WebSocket(`${server.base.replace('http', 'ws')}/v1/ws`);
      other.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      other.once('open', () => resolve(101));
      other.once('error', () => {});
    });
    assert.equal(upgrade, 503, 'a new socket is refused too');

    // Everything in flight finished whole: the same text as the undisturbed run.
    const got = await json;
    assert.equal(got.choices[0]!.text, want.choices[0]!.text);
    assert.equal(got.choices[0]!.finish_reason, 'length');
    assert.equal(got.usage!.completion_tokens, want.usage!.completion_tokens);

    const stream = await sse;
    assert.equal(stream.status, 200);
    assert.ok(stream.raw.endsWith('data: [DONE]\n\n'), stream.raw.slice(-200));
    const events = sseEvents(stream.raw);
    assert.equal(events.map((e) => (e.choices as { text: string }[])[0]?.text ?? '').join(''), want.choices[0]!.text);
    assert.equal((events.at(-1)!.choices as { finish_reason: string }[])[0]!.finish_reason, 'length');
    assert.ok(!events.some((e) => 'error' in e));

    const done = await ws.next('done', 'long');
    assert.equal(done.finish_reason, 'length');
    assert.equal(ws.text, want.choices[0]!.text);
    assert.ok(!ws.frames.some((f) => f.type === 'error' && f.id === 'long'));
    assert.equal(await ws.closeCode, 1001);

    assert.equal(await server.exited(), 0, server.log);
    // Not a vacuous pass: all three were still running when the signal came.
    const line = server.log.split('\n').find((l) => l.includes('draining: admitting nothing new'));
    assert.equal((JSON.parse(line ?? '{}') as { in_flight?: number }).in_flight, 3, server.log);
  } finally {
    await server.stop();
  }
});

test('drain: past --drain-seconds what still runs ends with finish_reason abort and a drain_timeout error; Ctrl-C to the whole group still drains', async () => {
  // One sequence at a time: 8 choices of a long request take many times the 1 s drain.
  const server = new SpawnedServer(await freePort(), ['--max-batch', '1', '--drain-seconds', '1'], true);
  await server.start();
  try {
    const json = fetch(`${server.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...LONG, n: 8 }) });
    const sse = sseBody(server.base, { ...LONG, n: 8 });
    await untilLive(server.base, 16);
    // Admitted last, so sixteen long choices run ahead of it: sent first, it could run first and
    // finish whole inside the 1 s drain on a fast machine, and then no drain_timeout is its due.
    const ws = await openWs(server.base);
    ws.send(LONG_WS);
    await untilLive(server.base, 17);

    const signalled = Date.now();
    // As Ctrl-C does: the signal reaches the engine process too, which must keep decoding.
    server.signal('SIGINT', true);

    const j = await json;
    assert.equal(j.status, 503);
    const body = (await j.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'drain_timeout');
    assert.match(body.error.message, /drain of 1 s/);
    assert.ok(Number(j.headers.get('retry-after')) >= 1);

    const stream = await sse;
    assert.equal(stream.status, 200);
    assert.ok(stream.raw.endsWith('data: [DONE]\n\n'));
    const events = sseEvents(stream.raw);
    const finishes = events.flatMap((e) => ((e.choices ?? []) as { finish_reason: string | null }[]).map((c) => c.finish_reason)).filter((f) => f !== null);
    assert.equal(finishes.length, 8, 'every choice gets its last chunk');
    assert.ok(finishes.includes('abort'), `finish reasons: ${finishes.join(', ')}`);
    assert.ok(finishes.every((f) => f === 'abort' || f === 'length'));
    const err = events.find((e) => 'error' in e) as { error: { code: string } } | undefined;
    assert.equal(err?.error.code, 'drain_timeout');

    const e = await ws.next('error', 'long');
    assert.equal(e.code, 'drain_timeout');
    const done = await ws.next('done', 'long');
    assert.equal(done.finish_reason, 'abort');
    assert.equal(await ws.closeCode, 1001);

    assert.equal(await server.exited(), 0, server.log);
    assert.ok(Date.now() - signalled < 1000 + 8000, 'the drain ends near its deadline');
    assert.doesNotMatch(server.log, /engine_crashed|engine process exited/);
  } finally {
    await server.stop();
  }
});

test('drain: a second signal exits at once with 128 + its number', async () => {
  const server = new SpawnedServer(await freePort(), ['--max-batch', '1', '--drain-seconds', '60']);
  await server.start();
  try {
    const json = fetch(`${server.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...LONG, n: 8 }) }).then((r) => r.status, () => 'connection lost');
    await untilLive(server.base, 8);
    server.signal('SIGTERM');
    let health: Response;
    do health = await fetch(`${server.base}/health`);
    while (health.status === 200);
    const signalled = Date.now();
    server.signal('SIGTERM');
    assert.equal(await server.exited(), 143);
    assert.ok(Date.now() - signalled < 5000);
    assert.equal(await json, 'connection lost');
  } finally {
    await server.stop();
  }
});

test('--drain-seconds / DLM_DRAIN_SECONDS: a whole number of seconds, 30 by default, 0 allowed, flag over env; the usage names it', () => {
  assert.equal((parseConfig([], {}) as Config).drainSeconds, 30);
  assert.equal((parseConfig([], { DLM_DRAIN_SECONDS: '5' }) as Config).drainSeconds, 5);
  assert.equal((parseConfig(['--drain-seconds', '0'], { DLM_DRAIN_SECONDS: '5' }) as Config).drainSeconds, 0);
  assert.throws(() => parseConfig(['--drain-seconds=-1'], {}), /--drain-seconds: expected an integer >= 0, got '-1'/);
  assert.throws(() => parseConfig([], { DLM_DRAIN_SECONDS: 'soon' }), ConfigError);
  assert.match(USAGE, /--drain-seconds N .*DLM_DRAIN_SECONDS, default 30/);
});
