// HTTP endpoints on a real server with the real engine: bad input answered with OpenAI-shaped
// errors (and the server still serving), health, metrics, auth, and clients that go away.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import WebSocket from 'ws';
import { scrape, serve, waitIdle, type Served } from './helpers/served.js';

let s: Served;
let model: string;
before(async () => {
  s = await serve();
  model = s.engine.model.name;
});
after(() => s.close());

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: ErrorBody & Record<string, unknown> }> {
  const res = await fetch(`${s.base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as ErrorBody & Record<string, unknown> };
}

function assertError(r: { status: number; json: ErrorBody }, status: number, param: string | null, code?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  assert.equal(typeof r.json.error.type, 'string');
  assert.equal(r.json.error.param, param, JSON.stringify(r.json));
  if (code !== undefined) assert.equal(r.json.error.code, code);
}

test('health answers without a model call', async () => {
  const r = await fetch(`${s.base}/health`);
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { status: string }).status, 'ok');
});

test('bad input gets a 400 naming the field, and the server keeps serving', async () => {
  const c = '/v1/completions';
  const ok = { model, prompt: 'x', max_tokens: 4, steps: 4 };
  assertError(await post(c, '{"model": '), 400, null, 'invalid_json');
  assertError(await post(c, '[1,2]'), 400, null);
  assertError(await post(c, { ...ok, prompt: 5 }), 400, 'prompt');
  assertError(await post(c, { ...ok, max_tokens: 'ten' }), 400, 'max_tokens');
  assertError(await post(c, { ...ok, stream: 'yes' }), 400, 'stream');
  assertError(await post(c, { ...ok, temperature: -0.5 }), 400, 'temperature');
  assertError(await post(c, { ...ok, top_p: 0 }), 400, 'top_p');
  assertError(await post(c, { ...ok, top_p: 1.5 }), 400, 'top_p');
  assertError(await post(c, { ...ok, steps: -1 }), 400, 'steps');
  assertError(await post(c, { ...ok, steps: 1e9 }), 400, 'steps');
  assertError(await post(c, { ...ok, sampler: 'warp-drive' }), 400, 'sampler');
  assertError(await post(c, { ...ok, n: 0 }), 400, 'n');
  assertError(await post(c, { ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop');
  assertError(await post(c, { ...ok, stepz: 4 }), 400, 'stepz', 'unknown_parameter');
  assertError(await post(c, { ...ok, presence_penalty: 1 }), 400, 'presence_penalty');
  assertError(await post(c, { ...ok, stream_options: { include_usage: true } }), 400, 'stream_options');
  assertError(await post(c, { ...ok, remasking: { schedule: 'sometimes', eta: 0.1 } }), 400, 'remasking.schedule');
  assertError(await post(c, { ...ok, prompt: [1, s.engine.model.vocabSize] }), 400, 'prompt');
  if (s.engine.model.limits.blockSizes === null) {
    assertError(await post(c, { ...ok, block_size: 4 }), 400, 'block_size', 'unsupported_parameter');
  }
  if (s.engine.model.limits.maxSpeculativeK === null) {
    assertError(await post(c, { ...ok, speculative_k: 2 }), 400, 'speculative_k', 'unsupported_parameter');
  }
  const long = Array.from({ length: s.engine.model.maxLength }, () => 1);
  assertError(await post(c, { ...ok, prompt: long, max_tokens: undefined }), 400, null, 'context_length_exceeded');
  assertError(await post(c, { ...ok, max_tokens: s.engine.model.maxLength }), 400, 'max_tokens', 'context_length_exceeded');
  assertError(await post(c, { ...ok, model: 'nope' }), 404, 'model', 'model_not_found');
  const chat = '/v1/chat/completions';
  assertError(await post(chat, { model, messages: [] }), 400, 'messages');
  assertError(await post(chat, { model, messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages.0.role');
  assertError(await post(chat, { model, messages: [{ role: 'user', content: 'x' }], stream_steps: true }), 400, 'stream_steps');
  assertError(await post(c, 'x'.repeat((1 << 20) + 1)), 413, null, 'request_too_large');
  const missing = await fetch(`${s.base}/v1/nothing`);
  assert.equal(missing.status, 404);
  const wrongMethod = await fetch(`${s.base}/v1/completions`);
  assert.equal(wrongMethod.status, 405);
  // Still serving; `model` may be left out (vLLM allows it: one server, one model).
  const { model: _m, ...noModel } = ok;
  assert.equal((await post(c, noModel)).status, 200);
  const good = await post(c, ok);
  assert.equal(good.status, 200);
  assert.equal((good.json.choices as unknown[]).length, 1);
});

test('/metrics carries our counters and the inference-gateway gauges', async () => {
  await post('/v1/completions', { model, prompt: 'x', max_tokens: 4, steps: 4, ignore_eos: true });
  const m = await scrape(s.base);
  for (const name of [
    `vllm:num_requests_waiting{model_name="${model}"}`,
    `vllm:num_requests_running{model_name="${model}"}`,
    `vllm:kv_cache_usage_perc{model_name="${model}"}`,
    'dlm_live_sequences',
    'dlm_nfe_total',
    'dlm_step_seconds_count',
    'dlm_request_seconds_count{api="completions"}',
  ]) {
    assert.ok(m.has(name), `missing ${name}`);
  }
  assert.ok(m.get('dlm_generated_tokens_total')! >= 4);
  assert.ok(m.get('dlm_nfe_total')! >= 1);
  assert.ok(m.get('dlm_requests_total{api="completions",status="200"}')! >= 1);
});

test('a client that drops an SSE stream mid-generation frees its sequences', async () => {
  const body = JSON.stringify({ model, prompt: 'Go', max_tokens: 48, steps: 48, ignore_eos: true, stream: true, n: 2 });
  await new Promise<void>((resolve, reject) => {
    const req = request(`${s.base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end(body);
  });
  await waitIdle(s.base);
  let left = 0;
  for (let i = 0; i < 40 && left === 0; i++) {
    left = (await scrape(s.base)).get('dlm_requests_total{api="completions",status="499"}') ?? 0;
    if (left === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(left, 1, 'recorded as a client that left (499)');
});

test('API keys: 401 in the OpenAI shape without one, served with one, /health and /metrics open, WS upgrade refused', async () => {
  const keyed = await serve({ engine: s.engine, apiKeys: ['k1', 'k2'] });
  try {
    const body = JSON.stringify({ model, prompt: 'x', max_tokens: 2, steps: 2 });
    const none = await fetch(`${keyed.base}/v1/completions`, { method: 'POST', body });
    assert.equal(none.status, 401);
    const err = (await none.json()) as ErrorBody;
    assert.equal(err.error.type, 'authentication_error');
    assert.equal(err.error.code, 'invalid_api_key');
    const wrong = await fetch(`${keyed.base}/v1/models`, { headers: { Authorization: 'Bearer k3' } });
    assert.equal(wrong.status, 401);
    const right = await fetch(`${keyed.base}/v1/completions`, { method: 'POST', body, headers: { Authorization: 'Bearer k2' } });
    assert.equal(right.status, 200);
    assert.equal((await fetch(`${keyed.base}/health`)).status, 200);
    assert.equal((await fetch(`${keyed.base}/metrics`)).status, 200, 'scrapers need no key');
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${keyed.base.replace('http', 'ws')}/v1/ws`, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => {});
      });
    assert.equal(await upgrade({}), 401);
    assert.equal(await upgrade({ Authorization: 'Bearer k1' }), 101);
  } finally {
    await keyed.close();
  }
});
