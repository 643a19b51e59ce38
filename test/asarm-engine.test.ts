// The asarm family in the real engine core on the trained models/zoo/asarm-brown: network calls
// never exceed tokens and k = 1 makes one call per token, a sequence's tokens do not depend on
// the batch it shares (per-row ranks, padded), infilling keeps the prompt and fills its holes,
// the window slides past the model's length, and bad settings are refused naming the field.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineCore, EngineRequestError } from '../engine/core.js';
import { validateParams } from '../engine/validate.js';
import type { DoneMsg, GenerationParams, StepMsg } from '../engine/protocol.js';

const MODEL = 'models/zoo/asarm-brown';
const MASK = 3;

let core: EngineCore;
const commits = new Map<number, number[]>();
const steps = new Map<number, StepMsg[]>();
const waiters = new Map<number, (d: DoneMsg) => void>();
let nextId = 1;

before(async () => {
  core = await EngineCore.open({ modelDir: MODEL, device: 'cpu', threads: 1 }, {
    commit: (id, tokens) => { commits.set(id, [...(commits.get(id) ?? []), ...tokens]); },
    step: (m) => { steps.set(m.id, [...(steps.get(m.id) ?? []), m]); },
    error: (m) => { throw new Error(`engine error: ${m.message}`); },
    done: (m) => waiters.get(m.id)?.(m),
  });
});
after(() => core.close());

function params(over: Partial<GenerationParams>): GenerationParams {
  return {
    maxTokens: 24, sampler: 'assd', steps: 1, temperature: 1, topP: 1, topK: 0, seed: 5,
    ignoreEos: true, stopTokenIds: [], streamSteps: false, ...over,
  };
}

function run(prompt: number[], p: GenerationParams): Promise<{ tokens: number[]; done: DoneMsg }> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiters.set(id, (done) => resolve({ tokens: commits.get(id) ?? [], done }));
    core.generate(id, prompt, p);
  });
}

const PROMPT = [346, 36, 272, 263, 578];

test('calls never exceed tokens; k = 1 is one call per token; larger k saves calls', async () => {
  const r1 = await run(PROMPT, params({ speculativeK: 1 }));
  assert.equal(r1.tokens.length, 24);
  assert.equal(r1.done.usage.nfe, 24);
  for (const k of [2, 5, 10, 16]) {
    for (let seed = 1; seed <= 3; seed++) {
      const r = await run(PROMPT, params({ speculativeK: k, seed }));
      assert.equal(r.tokens.length, 24);
      assert.equal(r.done.reason, 'length');
      assert.ok(r.done.usage.nfe <= 24, `k = ${k}: ${r.done.usage.nfe} calls for 24 tokens`);
      if (k >= 5) assert.ok(r.done.usage.nfe < 24, `k = ${k} saved no call`);
    }
  }
});

test('the same seed gives the same tokens, alone or batched with other lengths and k', async () => {
  const p = params({ speculativeK: 4, seed: 77 });
  const alone = await run(PROMPT, p);
  const [batched] = await Promise.all([
    run(PROMPT, p),
    run([12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22], params({ speculativeK: 7, seed: 3 })),
    run([40], params({ speculativeK: 1, seed: 4, maxTokens: 9 })),
  ]);
  assert.deepEqual(batched.tokens, alone.tokens);
  assert.equal(batched.done.usage.nfe, alone.done.usage.nfe);
  const other = await run(PROMPT, params({ speculativeK: 4, seed: 78 }));
  assert.notDeepEqual(other.tokens, alone.tokens);
});

test('infilling: [MASK] holes are filled, the rest of the prompt comes back unchanged', async () => {
  const prompt = [346, 36, MASK, MASK, MASK, 272, 263, MASK, 578, 50];
  const holes = prompt.flatMap((t, i) => (t === MASK ? [i] : []));
  for (const k of [1, 3, 16]) {
    const r = await run(prompt, params({ speculativeK: k, seed: k }));
    assert.equal(r.done.reason, 'stop');
    assert.equal(r.tokens.length, prompt.length);
    prompt.forEach((t, i) => {
      if (t !== MASK) assert.equal(r.tokens[i], t, `prompt token ${i} changed`);
      else assert.notEqual(r.tokens[i], MASK, `hole ${i} left unfilled`);
    });
    assert.equal(r.done.usage.completionTokens, holes.length);
    assert.ok(r.done.usage.nfe <= holes.length, `${r.done.usage.nfe} calls for ${holes.length} holes`);
    if (k === 1) assert.equal(r.done.usage.nfe, holes.length);
  }
});

test('the window slides past the model length (200 tokens from a 128-position model)', async () => {
  const r = await run(PROMPT, params({ speculativeK: 8, maxTokens: 200, seed: 9 }));
  assert.equal(r.tokens.length, 200);
  assert.ok(r.done.usage.nfe <= 200);
  assert.ok(!r.tokens.includes(MASK), 'no [MASK] is ever sampled');
});

test('EOS ends the completion unless ignore_eos', async () => {
  // From an empty prompt until the model says EOS or runs out: either way a clean stop.
  const r = await run([], params({ ignoreEos: false, stopTokenIds: [2], maxTokens: 100, speculativeK: 6, seed: 1 }));
  assert.ok(r.done.reason === 'stop' || r.done.reason === 'length');
  assert.ok(!r.tokens.includes(2), 'EOS is not part of the text');
  if (r.done.reason === 'length') assert.equal(r.tokens.length, 100);
});

test('stream_steps: one step message per call, the canvas filling up to the committed tokens', async () => {
  const id = nextId;
  const r = await run(PROMPT, params({ speculativeK: 4, maxTokens: 20, streamSteps: true, seed: 2 }));
  const got = steps.get(id) ?? [];
  assert.equal(got.length, r.done.usage.nfe);
  const last = got.at(-1)!;
  assert.equal(last.offset, 0);
  assert.deepEqual(last.canvas.slice(0, 20), r.tokens);
  const masked = got.map((m) => m.canvas.filter((t) => t === MASK).length);
  for (let i = 1; i < masked.length; i++) assert.ok(masked[i]! <= masked[i - 1]!, `masks grew: ${masked}`);
});

test('bad settings are refused before admission (validateParams, which the server runs), naming the field', () => {
  const refused = (p: GenerationParams, field: string) => assert.throws(
    () => validateParams(core.model, p),
    (e: unknown) => e instanceof EngineRequestError && e.param === field,
  );
  refused(params({ speculativeK: 0 }), 'speculative_k');
  refused(params({ speculativeK: 17 }), 'speculative_k');
  refused(params({ speculativeK: 2.5 }), 'speculative_k');
  refused(params({ sampler: 'ddpm' }), 'sampler');
  refused(params({ remasking: { schedule: 'cap', eta: 0.1 } }), 'remasking');
});
