// bd3lm-brown end to end: the real server on loopback, the engine in its own process, the
// official openai client. A streamed completion's text equals the same request's
// non-streamed text; a repeated prompt reports its reused blocks as cached_tokens; a
// block_size the model does not list is a 400 naming block_size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type OpenAI from 'openai';
import WebSocket from 'ws';
import { pino } from 'pino';
import type { Engine } from '../engine/api.js';
import { startEngine } from '../engine/client.js';
import { loadModelDir } from '../engine/manifest.js';
import { createServer, type RunningServer } from '../server/app.js';
import { chatTemplateOf } from '../tokenizer/chat.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { openaiClient } from './helpers/openai.js';

const MODEL = resolve(import.meta.dirname, '..', '..', 'models', 'zoo', 'bd3lm-brown');
let engine: Engine;
let server: RunningServer;
let client: OpenAI;
let base: string;

before(async () => {
  const dir = loadModelDir(MODEL);
  engine = await startEngine({ modelDir: MODEL, device: 'cpu', threads: 1, cacheBudgetBytes: 8 << 20 });
  server = await createServer({
    engine, tokenizer: TextTokenizer.fromFile(dir.tokenizerPath), chatTemplate: chatTemplateOf(dir.manifest),
    log: pino({ level: 'silent' }), host: '127.0.0.1', port: 0,
  });
  base = `http://127.0.0.1:${server.port}`;
  client = openaiClient(base);
});
after(async () => { server.close(); await engine.close(); });

const PROMPT = 'The jury said that the city of Atlanta had been praised for the manner in which the election was conducted';
const body = { model: 'bd3lm-brown', prompt: PROMPT, max_tokens: 20, ignore_eos: true, seed: 3, block_size: 4, steps: 4, sampler: 'confidence_topk' };

test('streamed text equals the final text, in block-sized deltas; usage reports cached prompt blocks', async () => {
  const full = await client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming);
  const text = full.choices[0]!.text;
  assert.equal(full.usage!.completion_tokens, 20);
  const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } } as unknown as OpenAI.CompletionCreateParamsStreaming);
  let streamed = '';
  let deltas = 0;
  type U = { prompt_tokens_details: { cached_tokens: number }; nfe: number };
  let usage: U | undefined;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.text) { streamed += chunk.choices[0].text; deltas++; }
    if (chunk.usage) usage = chunk.usage as unknown as U;
  }
  assert.equal(streamed, text);
  // One delta per committed block, plus the detokenizer's held-back tail at the end.
  assert.ok(deltas >= 2 && deltas <= 6, `20 tokens in blocks of 4 stream as at most 5 + 1 deltas, got ${deltas}`);
  // The second request found the first one's prompt blocks in the cache.
  const whole = Math.floor(full.usage!.prompt_tokens / 4) * 4;
  assert.ok(whole > 0);
  const first = full.usage as unknown as U;
  assert.equal(usage!.prompt_tokens_details.cached_tokens, whole);
  assert.equal(first.prompt_tokens_details.cached_tokens, 0);
  // Reused blocks cost no calls: prefill calls were only in the first request.
  assert.equal(first.nfe - usage!.nfe, whole / 4);
});

test('another block size serves; a block size the model does not list is a 400 naming block_size', async () => {
  const r = await client.completions.create({ ...body, block_size: 8, seed: 4 } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.usage!.completion_tokens, 20);
  const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, block_size: 5 }) });
  assert.equal(res.status, 400);
  const err = (await res.json()) as { error: { param: string; message: string } };
  assert.equal(err.error.param, 'block_size');
  assert.match(err.error.message, /4, 8, 16/);
});

test('the cache pool shows in /metrics within its budget', async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const name of ['dlm_cache_usage_ratio', 'vllm:kv_cache_usage_perc']) {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    assert.ok(line, `${name} is exported`);
    const v = Number(line.split(' ').pop());
    assert.ok(v > 0 && v <= 1, `${name} ${v}`);
  }
});

test('--cache-mb / DLM_CACHE_MB set the pool budget; a bad value is refused', async () => {
  const { parseConfig, ConfigError } = await import('../server/config.js');
  const c = parseConfig(['--cache-mb', '64'], {});
  assert.ok(c !== 'help' && c.cacheMb === 64);
  const e = parseConfig([], { DLM_CACHE_MB: '8' });
  assert.ok(e !== 'help' && e.cacheMb === 8);
  assert.throws(() => parseConfig(['--cache-mb', '0'], {}), ConfigError);
});

test('WebSocket: a delta frame per committed block, step frames show the block being denoised', async () => {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`);
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  const frames: { type: string; tokens?: number[]; canvas?: number[]; usage?: { nfe: number } }[] = [];
  const done = new Promise<void>((res) => ws.on('message', (data) => {
    const f = JSON.parse(String(data)) as (typeof frames)[number];
    frames.push(f);
    if (f.type === 'done' || f.type === 'error') res();
  }));
  ws.send(JSON.stringify({ type: 'generate', id: 'c', prompt: 'one two three four five six seven eight', settings: { max_tokens: 24, block_size: 8, steps: 4, sampler: 'confidence_topk', ignore_eos: true, seed: 1, stream_steps: true } }));
  await done;
  ws.close();
  const deltas = frames.filter((f) => f.type === 'delta').map((f) => f.tokens!.length);
  assert.equal(deltas.reduce((a, b) => a + b, 0), 24);
  // 24 tokens in blocks of 8: three or four blocks (the prompt's remainder opens the first).
  assert.ok(deltas.length >= 3 && deltas.length <= 4, `block deltas ${deltas}`);
  const steps = frames.filter((f) => f.type === 'step');
  assert.ok(steps.length >= deltas.length, `${steps.length} step frames`);
  for (const f of steps) assert.ok(f.canvas!.length <= 8);
});
