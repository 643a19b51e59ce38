// BD3-LM's variable-length rules on bd3lm-brown through the real server: a block model writes
// past its 128-token context (its window slides), and the entropy rule ends a sequence at the
// first committed block where the last `entropy_window` tokens fall below `min_entropy` nats,
// with stop_reason "low_entropy". Token ids come from the WebSocket's delta frames (a real `ws`
// client); the rule's arithmetic is checked against the tokens of the same seed decoded with
// the rule off (the rule never changes what is sampled, only where the sequence ends).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type OpenAI from 'openai';
import { EntropyStop } from '../engine/entropy-stop.js';
import { openaiClient } from './helpers/openai.js';
import { serve, type Served } from './helpers/served.js';

let s: Served;
before(async () => {
  s = await serve({ modelDir: 'models/zoo/bd3lm-brown' });
});
after(() => s.close());

type Frame = { type: string; id: string; tokens?: number[]; finish_reason?: string; stop_reason?: string | null; usage?: { completion_tokens: number } };

/** One WebSocket generation: every token id committed, and the done frame. */
async function generate(settings: Record<string, unknown>): Promise<{ tokens: number[]; done: Frame }> {
  const ws = new WebSocket(`${s.base.replace('http', 'ws')}/v1/ws`);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const tokens: number[] = [];
  const done = await new Promise<Frame>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      if (f.type === 'delta') tokens.push(...f.tokens!);
      else if (f.type === 'done') resolve(f);
      else if (f.type === 'error') reject(new Error(JSON.stringify(f)));
    });
    ws.send(JSON.stringify({ type: 'generate', id: 'v', prompt: 'The jury said', settings }));
  });
  ws.close();
  return { tokens, done };
}

const base = { ignore_eos: true, seed: 11, block_size: 4, steps: 4, sampler: 'confidence_topk' };

test('a block model writes past its context: 300 tokens from a 128-token model, with the rule off', async () => {
  const { tokens, done } = await generate({ ...base, max_tokens: 300, min_entropy: 0 });
  assert.equal(tokens.length, 300);
  assert.equal(done.finish_reason, 'length');
  assert.equal(done.stop_reason, null);
});

test('the entropy rule stops at the first block whose last window of tokens falls below the threshold', async () => {
  const window = 24;
  const max = 120;
  const { tokens: all } = await generate({ ...base, max_tokens: max, min_entropy: 0 });
  assert.equal(all.length, max);
  // The entropy of the last `window` tokens at every block boundary, computed here directly.
  const entropyAt = (n: number): number => {
    const counts = new Map<number, number>();
    for (const t of all.slice(n - window, n)) counts.set(t, (counts.get(t) ?? 0) + 1);
    let h = 0;
    for (const c of counts.values()) h -= (c / window) * Math.log(c / window);
    return h;
  };
  const checks: { n: number; h: number }[] = [];
  for (let n = window; n <= max; n += 4) checks.push({ n, h: entropyAt(n) });
  // A threshold just above a boundary's entropy that is not the first boundary's: the rule must
  // let the earlier boundaries pass and stop at the first one below it.
  const sorted = [...checks].sort((a, b) => a.h - b.h);
  const pick = sorted.find((c) => c.n > window && c.h < checks[0]!.h) ?? sorted[0]!;
  const threshold = pick.h + 1e-6;
  const expected = checks.find((c) => c.h < threshold)!.n;
  assert.ok(expected > window, 'the seed gives a boundary past the first one to stop at');
  const { tokens, done } = await generate({ ...base, max_tokens: max, min_entropy: threshold, entropy_window: window });
  assert.deepEqual(tokens, all.slice(0, expected), `stops after ${expected} tokens, the same tokens as with the rule off`);
  assert.equal(done.finish_reason, 'stop');
  assert.equal(done.stop_reason, 'low_entropy');
  assert.equal(done.usage!.completion_tokens, expected);
  // The engine's incremental window agrees with the direct count at every boundary.
  const rule = new EntropyStop(threshold, window);
  for (let n = 4; n <= max; n += 4) {
    rule.push(all.slice(n - 4, n));
    if (n >= window) assert.ok(Math.abs(rule.entropy() - entropyAt(n)) < 1e-9, `entropy at ${n}`);
  }
});

test('over HTTP (openai client): stop_reason reads through; the default rule (256 tokens) leaves shorter replies alone', async () => {
  const client = openaiClient(s.base);
  // A threshold no text can reach (ln 16 < 3 nats) over a short window: the sequence stops at 16.
  const r = await client.completions.create({ model: 'bd3lm-brown', prompt: 'The jury said', max_tokens: 64, ...base, min_entropy: 3, entropy_window: 16 } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
  const choice = r.choices[0] as unknown as { finish_reason: string; stop_reason: string | null };
  assert.equal(r.usage!.completion_tokens, 16);
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(choice.stop_reason, 'low_entropy');
  // The model's default (4 nats over 256 tokens) is on, and cannot trip before 256 tokens.
  const info = (await (await fetch(`${s.base}/v1/models`)).json()) as { data: { id: string }[] };
  assert.equal(info.data[0]!.id, 'bd3lm-brown');
  const long = await client.completions.create({ model: 'bd3lm-brown', prompt: 'The jury said', max_tokens: 200, ...base } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal((long.choices[0] as unknown as { stop_reason: string | null }).stop_reason, null);
  assert.equal(long.usage!.completion_tokens, 200);
});

test('bad variable-length settings are 400s naming the field', async () => {
  const post = async (body: Record<string, unknown>): Promise<{ status: number; param: string; message: string }> => {
    const res = await fetch(`${s.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bd3lm-brown', prompt: 'Hi', ...body }) });
    const e = (await res.json()) as { error: { param: string; message: string } };
    return { status: res.status, param: e.error.param, message: e.error.message };
  };
  let r = await post({ max_tokens: 16 * 128 + 1 });
  assert.equal(r.status, 400);
  assert.equal(r.param, 'max_tokens');
  assert.match(r.message, /at most 2048/);
  r = await post({ min_entropy: -1 });
  assert.equal(r.status, 400);
  assert.equal(r.param, 'min_entropy');
  r = await post({ max_tokens: 32, min_entropy: 4, entropy_window: 4096 });
  assert.equal(r.status, 400);
  assert.equal(r.param, 'entropy_window');
  r = await post({ entropy_window: 1 });
  assert.equal(r.status, 400);
  assert.equal(r.param, 'entropy_window');
});
