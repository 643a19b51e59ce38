// The trained AS-ARM (models/zoo/asarm-brown) served end to end: the real server on loopback,
// the real engine process, the official openai client. speculative_k rides as a request
// setting, usage.nfe counts network calls, [MASK] in the prompt text marks holes to fill, and a
// speculative_k outside 1..16 is a 400 naming it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { serveWithClient } from './helpers/openai.js';
import type { Served } from './helpers/served.js';

let s: Served;
let client: OpenAI;
let model: string;

before(async () => {
  ({ s, client, model } = await serveWithClient({ modelDir: 'models/zoo/asarm-brown' }));
});
after(() => s.close());

type Body = OpenAI.CompletionCreateParamsNonStreaming;
type Nfe = { nfe: number };

test('completions with speculative_k: usage.nfe counts calls, never more than tokens', async () => {
  assert.equal(s.engine.model.family, 'asarm');
  const serial = await client.completions.create({ model, prompt: 'The king said', max_tokens: 20, seed: 3, speculative_k: 1, ignore_eos: true } as Body);
  assert.equal(serial.usage!.completion_tokens, 20);
  assert.equal((serial.usage as unknown as Nfe).nfe, 20);
  const fast = await client.completions.create({ model, prompt: 'The king said', max_tokens: 20, seed: 3, speculative_k: 8, ignore_eos: true } as Body);
  assert.equal(fast.usage!.completion_tokens, 20);
  assert.equal(fast.choices[0]!.finish_reason, 'length');
  const nfe = (fast.usage as unknown as Nfe).nfe;
  assert.ok(nfe >= 1 && nfe < 20, `k = 8 made ${nfe} calls for 20 tokens`);
  assert.ok(fast.choices[0]!.text.length > 0);
});

test('streaming returns the same text as the non-streamed request with the same seed', async () => {
  const body = { model, prompt: 'In the beginning', max_tokens: 16, seed: 12, speculative_k: 5, ignore_eos: true };
  const whole = await client.completions.create(body as Body);
  const stream = await client.completions.create({ ...body, stream: true } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  let chunks = 0;
  for await (const c of stream) { text += c.choices[0]?.text ?? ''; chunks++; }
  assert.equal(text, whole.choices[0]!.text);
  assert.ok(chunks >= 2);
});

test('infilling: [MASK] in the prompt marks holes; the completion is the prompt with them filled', async () => {
  const prompt = 'And the[MASK][MASK][MASK] of the[MASK] was upon the face of the deep.';
  const r = await client.completions.create({ model, prompt, seed: 4, speculative_k: 4 } as Body);
  const text = r.choices[0]!.text;
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  assert.equal(r.usage!.completion_tokens, 4);
  assert.ok((r.usage as unknown as Nfe).nfe <= 4);
  assert.ok(!text.includes('[MASK]'), text);
  assert.ok(text.startsWith('And the'), text);
  assert.ok(text.endsWith('was upon the face of the deep.'), text);
});

test('speculative_k outside 1..16 is a 400 naming speculative_k; the server keeps serving', async () => {
  for (const k of [0, 17, 1.5]) {
    await assert.rejects(
      client.completions.create({ model, prompt: 'x', max_tokens: 4, speculative_k: k } as Body),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'speculative_k',
      `speculative_k ${k}`,
    );
  }
  const ok = await client.completions.create({ model, prompt: 'x', max_tokens: 4, speculative_k: 16, ignore_eos: true } as Body);
  assert.equal(ok.usage!.completion_tokens, 4);
});
