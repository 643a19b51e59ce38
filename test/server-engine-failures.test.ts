// What clients see when the engine is full or dies under them, through the real server: a clear
// error (429 + Retry-After when full, 503 when the engine died; both retryable), and the server
// still serving afterwards.
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
  let ok = false;
  for (let i = 0; i < 100 && !ok; i++) {
    const r = await fetch(`${s.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 4, steps: 4 }) });
    ok = r.status === 200;
    if (!ok) await new Promise((r2) => setTimeout(r2, 100));
  }
  assert.ok(ok, 'served after the engine restarted');
  await waitIdle(s.base);
});
