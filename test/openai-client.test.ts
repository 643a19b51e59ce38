// The official openai npm client against a real server on loopback with the real engine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { serveWithClient } from './helpers/openai.js';
import { waitIdle, type Served } from './helpers/served.js';

let s: Served;
let client: OpenAI;
let model: string;

before(async () => {
  ({ s, client, model } = await serveWithClient());
});
after(() => s.close());

// Small and fast on the tiny model; ignore_eos so the text is long enough to cut.
const small = { max_tokens: 16, steps: 8, ignore_eos: true } as const;

test('models.list names the served model', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [model]);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
});

test('completions.create: text, finish_reason and usage with nfe', async () => {
  const r = await client.completions.create({ model, prompt: 'The', ...small, seed: 1 } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(typeof r.choices[0]!.text, 'string');
  assert.equal(r.usage!.completion_tokens, 16);
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 16);
  const u = r.usage as unknown as { nfe: number; prompt_tokens_details: { cached_tokens: number } };
  assert.ok(u.nfe >= 1, `nfe ${u.nfe}`);
  assert.equal(typeof u.prompt_tokens_details.cached_tokens, 'number');
});

test('chat.completions.create: an assistant message', async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hello' }],
    max_completion_tokens: 8,
    seed: 2,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.equal(typeof r.choices[0]!.message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0]!.finish_reason));
  assert.ok(r.usage!.completion_tokens <= 8);
});

test('seed reproduces the same text; another seed (almost surely) differs', async () => {
  const go = (seed: number) => client.completions.create({ model, prompt: 'Once', ...small, seed } as OpenAI.CompletionCreateParamsNonStreaming);
  const [a, b, c] = await Promise.all([go(7), go(7), go(8)]);
  assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  assert.notEqual(a.choices[0]!.text, c.choices[0]!.text);
});

test('n fans out to n choices with seeds seed, seed+1', async () => {
  const base = { model, prompt: 'Once', ...small } as const;
  const r = await client.completions.create({ ...base, n: 2, seed: 40 } as OpenAI.CompletionCreateParamsNonStreaming);
  const r41 = await client.completions.create({ ...base, seed: 41 } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.choices[1]!.text, r41.choices[0]!.text);
  assert.equal(r.usage!.completion_tokens, 32);
});

test('streaming chat with include_usage: role first, content deltas, finish, usage chunk, [DONE]', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 16,
    seed: 3,
    stream: true,
    stream_options: { include_usage: true },
    ...({ ignore_eos: true } as object),
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.length >= 3);
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
  const last = chunks[chunks.length - 1]!;
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage!.completion_tokens, 16);
  const finals = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finals.length, 1);
  assert.equal(finals[0]!.choices[0]!.finish_reason, 'length');
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  // Streamed text equals the non-streamed text for the same seed.
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  const whole = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 16, seed: 3, ...({ ignore_eos: true } as object) });
  assert.equal(text, whole.choices[0]!.message.content);
});

test('streaming completions: text chunks rebuild the completion', async () => {
  const params = { model, prompt: 'A', ...small, seed: 5 };
  const stream = await client.completions.create({ ...params, stream: true } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  let finish: string | null = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  const whole = await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(text, whole.choices[0]!.text);
  assert.equal(finish, 'length');
});

test('stop: the text ends right before the first stop string, finish_reason stop', async () => {
  const params = { model, prompt: 'The', max_tokens: 32, steps: 8, ignore_eos: true, seed: 11 };
  const full = (await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming)).choices[0]!.text;
  const clean = full.replace(/\uFFFD/g, '');
  assert.ok(clean.length >= 6, `need some text to cut, got ${JSON.stringify(full)}`);
  const stop = clean.slice(Math.floor(clean.length / 2), Math.floor(clean.length / 2) + 2);
  const expected = full.slice(0, full.indexOf(stop));
  const cut = await client.completions.create({ ...params, stop } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(cut.choices[0]!.text, expected);
  assert.equal(cut.choices[0]!.finish_reason, 'stop');
  const streamed = await client.completions.create({ ...params, stop: [stop], stream: true } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  let finish: string | null = null;
  for await (const c of streamed) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, expected);
  assert.equal(finish, 'stop');
});

test('bad settings raise BadRequestError naming the param', async () => {
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', temperature: -1 }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'temperature',
  );
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', sampler: 'no-such-sampler' } as OpenAI.CompletionCreateParamsNonStreaming),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'sampler' && /no-such-sampler/.test(err.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
  );
  await assert.rejects(
    client.completions.create({ model, prompt: Array.from({ length: s.engine.model.maxLength + 1 }, () => 1) }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.code === 'context_length_exceeded',
  );
});

test('20 concurrent generations all finish, and nothing stays live', async () => {
  const rs = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      client.completions.create({ model, prompt: `Request ${i}`, max_tokens: 8, steps: 4, ignore_eos: true, seed: i } as OpenAI.CompletionCreateParamsNonStreaming),
    ),
  );
  for (const r of rs) {
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 8);
  }
  await waitIdle(s.base);
});

test('streaming with n = 2: each choice gets its role chunk, its text and one finish', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 8,
    n: 2,
    seed: 20,
    stream: true,
    ...({ ignore_eos: true, steps: 4 } as object),
  });
  const text = ['', ''];
  const roles = [0, 0];
  const finishes = [0, 0];
  for await (const c of stream) {
    const ch = c.choices[0]!;
    if (ch.delta.role) roles[ch.index]!++;
    text[ch.index] += ch.delta.content ?? '';
    if (ch.finish_reason) finishes[ch.index]!++;
  }
  assert.deepEqual(roles, [1, 1]);
  assert.deepEqual(finishes, [1, 1]);
  const second = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, seed: 21, ...({ ignore_eos: true, steps: 4 } as object) });
  assert.equal(text[1], second.choices[0]!.message.content);
});
