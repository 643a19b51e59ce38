// The adaptive parallel decoding rules served per request (sampler confidence_factor with its
// factor f, sampler entropy_bound with the EB-sampler's gamma): through the real server with the
// official openai client and a WebSocket client, on the tiny MDLM. usage.tokens_per_nfe in every
// response shape; the bounds' limits (gamma 0: one token per call; a huge bound: the whole window
// in one call); range and misuse errors naming the field, on HTTP and the WebSocket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { serveWithClient, type ServedClient } from './helpers/openai.js';
import { wsGenerate } from './helpers/ws-run.js';

let t: ServedClient;
before(async () => { t = await serveWithClient(); });
after(() => t.s.close());

type Usage = { completion_tokens: number; nfe: number; tokens_per_nfe: number };
const N = 24;

async function complete(extra: Record<string, unknown>): Promise<{ text: string; usage: Usage }> {
  const r = await t.client.completions.create({ model: t.model, prompt: 'The river', max_tokens: N, ignore_eos: true, seed: 3, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  return { text: r.choices[0]!.text, usage: r.usage as unknown as Usage };
}

function perCall(u: Usage): number {
  return Math.round((u.completion_tokens / u.nfe) * 1000) / 1000;
}

test('both rules decode; usage reports tokens per network call next to nfe', async () => {
  for (const extra of [{ sampler: 'entropy_bound', entropy_bound: 1 }, { sampler: 'confidence_factor', confidence_factor: 1 }, { sampler: 'entropy_bound' }, { sampler: 'confidence_factor' }]) {
    const { text, usage } = await complete(extra);
    assert.ok(text.length > 0, JSON.stringify(extra));
    assert.equal(usage.completion_tokens, N);
    assert.ok(usage.nfe >= 1 && usage.nfe <= N, `${JSON.stringify(extra)}: nfe ${usage.nfe}`);
    assert.equal(usage.tokens_per_nfe, perCall(usage), JSON.stringify(extra));
  }
});

test('gamma 0 commits one token per call; a huge gamma or factor the whole window in one', async () => {
  const one = await complete({ sampler: 'entropy_bound', entropy_bound: 0 });
  assert.equal(one.usage.nfe, N);
  assert.equal(one.usage.tokens_per_nfe, 1);
  for (const extra of [{ sampler: 'entropy_bound', entropy_bound: 1e6 }, { sampler: 'confidence_factor', confidence_factor: 1e6 }]) {
    const { usage } = await complete(extra);
    assert.equal(usage.nfe, 1, `${JSON.stringify(extra)}: ${N} tokens fit one window`);
    assert.equal(usage.tokens_per_nfe, N);
  }
  // f = 0 keeps only the most confident proposal: one token per call too.
  assert.equal((await complete({ sampler: 'confidence_factor', confidence_factor: 0 })).usage.nfe, N);
  // Between the limits the count falls as the bound grows (the tiny model is unsure: about 6
  // nats a position, so gamma must be tens of nats to commit several tokens a call).
  const calls: number[] = [];
  for (const g of [1, 10, 30, 100]) calls.push((await complete({ sampler: 'entropy_bound', entropy_bound: g })).usage.nfe);
  assert.ok(calls.every((c, i) => i === 0 || c <= calls[i - 1]!), `calls by gamma 1, 10, 30, 100: ${calls}`);
  assert.ok(calls.some((c) => c > 1 && c < N), `some gamma between the limits: ${calls}`);
});

test('a bound given alone selects its sampler', async () => {
  // The model's default (confidence_topk, 32 steps) would spend min(32, 24) = 24 calls either way;
  // alone, gamma 0 and 1e6 must give the two limits.
  assert.equal((await complete({ entropy_bound: 0 })).usage.nfe, N);
  assert.equal((await complete({ entropy_bound: 1e6 })).usage.nfe, 1);
  assert.equal((await complete({ confidence_factor: 1e6 })).usage.nfe, 1);
});

test('the same seed and bound give the same text; the rules consume the RNG alike', async () => {
  const a = await complete({ sampler: 'entropy_bound', entropy_bound: 0.5, temperature: 0.8 });
  const b = await complete({ sampler: 'entropy_bound', entropy_bound: 0.5, temperature: 0.8 });
  assert.equal(a.text, b.text);
  assert.deepEqual(a.usage, b.usage);
});

test('SSE: the usage chunk carries tokens_per_nfe (chat and completions)', async () => {
  const chat = await t.client.chat.completions.create({
    model: t.model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 12, stream: true,
    stream_options: { include_usage: true }, sampler: 'entropy_bound', entropy_bound: 0, ignore_eos: true,
  } as OpenAI.ChatCompletionCreateParamsStreaming);
  let usage: Usage | null = null;
  for await (const c of chat) if (c.usage) usage = c.usage as unknown as Usage;
  assert.ok(usage, 'a usage chunk');
  assert.equal(usage.nfe, 12);
  assert.equal(usage.tokens_per_nfe, 1);
  const comp = await t.client.completions.create({
    model: t.model, prompt: 'A', max_tokens: 10, stream: true, stream_options: { include_usage: true }, confidence_factor: 1e6, ignore_eos: true,
  } as OpenAI.CompletionCreateParamsStreaming);
  usage = null;
  for await (const c of comp) if (c.usage) usage = c.usage as unknown as Usage;
  assert.equal(usage?.tokens_per_nfe, 10);
});

test('n choices: tokens_per_nfe is the total over every choice', async () => {
  const r = await t.client.completions.create({ model: t.model, prompt: 'So', max_tokens: 8, n: 2, ignore_eos: true, sampler: 'entropy_bound', entropy_bound: 0 } as OpenAI.CompletionCreateParamsNonStreaming);
  const u = r.usage as unknown as Usage;
  assert.equal(u.completion_tokens, 16);
  assert.equal(u.nfe, 16);
  assert.equal(u.tokens_per_nfe, 1);
});

test('WebSocket: the rules run from generate settings; the done frame carries tokens_per_nfe', async () => {
  const frames = await wsGenerate(t.s.base, { id: 'eb', prompt: 'The river', settings: { max_tokens: N, ignore_eos: true, sampler: 'entropy_bound', entropy_bound: 0 } });
  const done = frames.at(-1)!;
  assert.equal(done.type, 'done');
  const u = done.usage as Usage;
  assert.equal(u.nfe, N);
  assert.equal(u.tokens_per_nfe, 1);
  const big = (await wsGenerate(t.s.base, { id: 'f', prompt: 'The river', settings: { max_tokens: N, ignore_eos: true, confidence_factor: 1e6 } })).at(-1)!;
  assert.equal((big.usage as Usage).nfe, 1);
});

async function rejects(extra: Record<string, unknown>, param: string, code: string): Promise<void> {
  await assert.rejects(
    t.client.completions.create({ model: t.model, prompt: 'x', max_tokens: 4, ...extra } as OpenAI.CompletionCreateParamsNonStreaming),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.param, param, err.message);
      assert.equal(err.code, code, err.message);
      return true;
    },
  );
}

test('bad bounds are a 400 naming the field; the server keeps serving', async () => {
  await rejects({ sampler: 'entropy_bound', entropy_bound: -0.5 }, 'entropy_bound', 'invalid_value');
  await rejects({ sampler: 'confidence_factor', confidence_factor: -1 }, 'confidence_factor', 'invalid_value');
  await rejects({ confidence_factor: 'big' }, 'confidence_factor', 'invalid_value');
  await rejects({ sampler: 'ddpm', entropy_bound: 1 }, 'entropy_bound', 'unsupported_parameter');
  await rejects({ sampler: 'entropy_bound', confidence_factor: 1 }, 'confidence_factor', 'unsupported_parameter');
  await rejects({ stream_drafts: true }, 'stream_drafts', 'unsupported_parameter');
  const ws = await wsGenerate(t.s.base, { id: 'bad', prompt: 'x', settings: { sampler: 'entropy_bound', entropy_bound: -1 } });
  assert.deepEqual(ws.map((f) => f.type), ['error']);
  assert.equal(ws[0]!.param, 'settings.entropy_bound');
  assert.equal(ws[0]!.code, 'invalid_value');
  assert.equal((await complete({ sampler: 'entropy_bound', entropy_bound: 0 })).usage.nfe, N);
});
