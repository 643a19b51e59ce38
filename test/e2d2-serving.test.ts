// The shipped E2D2 model served end to end: the real engine process, the real server on
// loopback, the official openai client. Streamed text equals the final text for the same seed;
// block_size is a request setting; a block size the model does not allow is a 400 naming it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { pino } from 'pino';
import { startEngine } from '../engine/client.js';
import type { Engine } from '../engine/api.js';
import { loadModelDir } from '../engine/manifest.js';
import { createServer, type RunningServer } from '../server/app.js';
import { chatTemplateOf } from '../tokenizer/chat.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { openaiClient } from './helpers/openai.js';

const MODEL = join(fileURLToPath(new URL('../../', import.meta.url)), 'models', 'zoo', 'e2d2-brown');
let engine: Engine;
let server: RunningServer;
let client: OpenAI;

before(async () => {
  const dir = loadModelDir(MODEL);
  engine = await startEngine({ modelDir: MODEL, device: 'cpu', threads: 1 });
  server = await createServer({
    engine, tokenizer: TextTokenizer.fromFile(dir.tokenizerPath), chatTemplate: chatTemplateOf(dir.manifest),
    log: pino({ level: 'silent' }), host: '127.0.0.1', port: 0,
  });
  client = openaiClient(`http://127.0.0.1:${server.port}`);
});
after(async () => { server.close(); await engine.close(); });

const params = { model: 'e2d2-brown', prompt: 'The king said', max_tokens: 14, ignore_eos: true, seed: 3 };

test('completions: length, usage with nfe, and streamed chunks rebuild the same text', async () => {
  const r = await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 14);
  const nfe = (r.usage as unknown as { nfe: number }).nfe;
  // Default block 4, 4 steps per block: at most 4 decoder calls per block plus one encoder call per block and the prompt.
  assert.ok(nfe >= 4 && nfe <= 5 * 5 + 1, `nfe ${nfe}`);
  const stream = await client.completions.create({ ...params, stream: true } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  let chunks = 0;
  for await (const c of stream) { text += c.choices[0]?.text ?? ''; chunks++; }
  assert.equal(text, r.choices[0]!.text);
  assert.ok(chunks >= 3, `text came in ${chunks} chunks`);
});

test('block_size is a request setting: another allowed size serves, a bad one is a 400 and the engine keeps serving', async () => {
  const a = await client.completions.create({ ...params, block_size: 8 } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(a.usage!.completion_tokens, 14);
  await assert.rejects(client.completions.create({ ...params, block_size: 5 } as OpenAI.CompletionCreateParamsNonStreaming),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'block_size');
  // The engine is still serving.
  const b = await client.chat.completions.create({ model: 'e2d2-brown', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 6, seed: 1 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(b.choices.length, 1);
  assert.equal(typeof b.choices[0]!.message.content, 'string');
});
