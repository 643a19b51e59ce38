// What clients see when the engine is full, dies or hangs under them, through the real server: a
// clear error (429 + Retry-After when full, 503 when the engine died or hung; both retryable),
// and the server still serving afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { startEngine } from '../engine/client.js';
import type { Engine } from '../engine/api.js';
import { serve, TEST_MODEL_DIR, waitIdle, type Served } from './helpers/served.js';
import { openaiClient } from './helpers/openai.js';

let engine: Engine;
let s: Served;
let client: OpenAI;
before(async () => {
  // Room for two sequences in all: one decoding, one waiting.
  engine = await startEngine({ modelDir: TEST_MODEL_DIR, device: 'cpu', threads: 1, maxBatch: 1, maxQueue: 1 });
  s = await serve({ engine });
  client = openaiClient(s.base);
});
after(async () => {
  await s.close();
  await engine.close();
});

const long = { prompt: 'Go', max_tokens: 64, steps: 32, ignore_eos: true } as const;

/** Whether a small completion is served (200) within `ms`, retrying while the engine restarts. */
async function servedWithin(base: string, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    const r = await fetch(`${base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 4, steps: 4 }) });
    if (r.status === 200) return true;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return false;
}

test('a full engine queue is a 429 queue_full with Retry-After, and the requests already in keep going', async () => {
  const a = client.completions.create({ model: s.engine.model.name, ...long, seed: 1 } as OpenAI.CompletionCreateParamsNonStreaming);
  const b = client.completions.create({ model: s.engine.model.name, ...long, seed: 2 } as OpenAI.CompletionCreateParamsNonStreaming);
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(
    client.completions.create({ model: s.engine.model.name, prompt: 'x', max_tokens: 4 }),
    (err: unknown) =>
      err instanceof OpenAI.APIError && err.status === 429 && err.code === 'queue_full' && err.type === 'rate_limit_error'
      && Number(err.headers?.get('retry-after')) >= 1,
  );
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.usage!.completion_tokens, 64);
  assert.equal(rb.usage!.completion_tokens, 64);
});

test('an engine that dies mid-request fails that request with engine_crashed; the server serves the next', async () => {
  // 1000 steps: a network call each, so the request is still decoding when the kill comes,
  // however idle the machine (64 tokens in 32 steps could finish inside the 150 ms).
  const pending = fetch(`${s.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...long, steps: 1000, seed: 3 }) });
  await new Promise((r) => setTimeout(r, 150));
  // The engine is our child process (node engine/main.js); kill it as a crash would.
  const children = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'engine/main.js']).toString().trim().split('\n');
  for (const pid of children) process.kill(Number(pid), 'SIGKILL');
  const res = await pending;
  assert.equal(res.status, 503);
  const body = (await res.json()) as { error: { code: string; type: string } };
  assert.equal(body.error.code, 'engine_crashed');
  assert.equal(body.error.type, 'server_error');
  // The engine restarts by itself; the next request is served.
  assert.ok(await servedWithin(s.base, 10_000), 'served after the engine restarted');
  await waitIdle(s.base);
});

test('a hung engine (alive, silent with work in flight): /health turns 503, the watchdog kills and restarts it, the request fails with engine_crashed', async () => {
  // Its stats after every tick are the heartbeat; a short watchdog so that the test is quick.
  const hangs = await startEngine({ modelDir: TEST_MODEL_DIR, device: 'cpu', threads: 1, watchdogMs: 3000 });
  const h = await serve({ engine: hangs });
  try {
    assert.equal((await fetch(`${h.base}/health`)).status, 200);
    const pending = fetch(`${h.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...long, steps: 1000, seed: 4 }) });
    await new Promise((r) => setTimeout(r, 150));
    const pid = hangs.pid!;
    // Stopped, the process lives on but runs no tick: a hang, not a crash.
    process.kill(pid, 'SIGSTOP');
    let sick = false;
    for (let i = 0; i < 60 && !sick; i++) {
      sick = (await fetch(`${h.base}/health`)).status === 503;
      if (!sick) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(sick, '/health reported the silent engine');
    const res = await pending;
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'engine_crashed');
    assert.match(body.error.message, /hung/);
    assert.notEqual(hangs.pid, pid, 'a fresh engine process');
    assert.ok(await servedWithin(h.base, 10_000), 'served after the watchdog restarted the engine');
    assert.equal((await fetch(`${h.base}/health`)).status, 200);
    // Idle: nothing in flight, so silence is no hang.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await fetch(`${h.base}/health`)).status, 200);
    assert.equal(hangs.restarts, 1);
  } finally {
    await h.close();
    await hangs.close();
  }
});
