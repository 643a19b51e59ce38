// The E2D2 family on the shipped tiny model through the real scheduler and onnxruntime-node:
// a sequence's tokens do not depend on its batch; the cached encoder state gives the same
// tokens as re-encoding the whole context before every step; blocks stream as they finish;
// EOS / stop ids / max_tokens end a sequence; generation runs past the model's length; bad
// settings are refused naming the field.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineRequestError } from '../engine/errors.js';
import { DirectRunner, type DirectResult } from '../engine/direct-runner.js';
import { e2d2Family, makeE2d2Family } from '../engine/families/e2d2-family.js';
import type { GenerationParams } from '../engine/protocol.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = join(REPO, 'models', 'zoo', 'e2d2-brown');
let r: DirectRunner;
// The shipped tiny model barely reads its context yet; a random network (non-zero everywhere)
// does, so the cached-vs-recomputed comparison on it cannot pass by ignoring the context.
let random: DirectRunner;

before(async () => {
  r = await DirectRunner.open(MODEL, 1);
  const dir = mkdtempSync(join(tmpdir(), 'dlm-e2d2-random-'));
  const py = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_parity', '--model-dir', dir, '--tokenizer', join(MODEL, 'tokenizer.json')],
    { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(py.status, 0, `dlm.e2d2_parity --model-dir failed: ${py.stderr}`);
  random = await DirectRunner.open(dir, 1);
});
after(async () => { await r.close(); await random.close(); });

const base: GenerationParams = {
  maxTokens: 18, sampler: 'confidence_topk', steps: 4, temperature: 1, topP: 1, topK: 0, seed: 7,
  ignoreEos: true, stopTokenIds: [], streamSteps: false, blockSize: 4,
};
// Lengths 6 and 9 leave a partial block (clean lead tokens in the first noisy block); [] starts
// after [EOS]; 8 is whole blocks only.
const prompts = [[40, 41, 42, 43, 44, 45], [], [50, 51, 52, 53, 54, 55, 56, 57, 58], [60, 61, 62, 63, 64, 65, 66, 67]];
const toks = (rs: DirectResult[]) => rs.map((x) => x.tokens);

for (const sampler of ['confidence_topk', 'ddpm', 'first_hitting', 'confidence_threshold']) {
  test(`${sampler}: same seed, same tokens alone and batched`, async () => {
    const p = { ...base, sampler };
    // Fresh pools on both sides: a warm one skips prompt blocks and so changes nfe
    // (e2d2-pool.test.ts covers reuse).
    const alone: DirectResult[] = [];
    const fam = makeE2d2Family();
    for (const pr of prompts) alone.push((await r.run(fam, [pr], p))[0]!);
    const batched = await r.run(makeE2d2Family(), prompts, p);
    assert.deepEqual(toks(batched), toks(alone));
    assert.deepEqual(batched.map((x) => x.usage.nfe), alone.map((x) => x.usage.nfe));
    for (const x of alone) assert.equal(x.tokens.length, 18);
  });
}

test('rows with different block sizes and samplers batch together (padded blocks and contexts) without changing their tokens', async () => {
  const mixed = prompts.map((_, i) => ({ ...base, blockSize: i % 2 === 0 ? 8 : 4, sampler: i < 2 ? 'ddpm' : 'confidence_topk', seed: 11 + i }));
  for (const [runner, ps] of [[r, prompts], [random, prompts.map((p) => p.map((t) => t % 90))]] as const) {
    const alone: DirectResult[] = [];
    for (let i = 0; i < ps.length; i++) alone.push((await runner.run(e2d2Family, [ps[i]!], mixed[i]!))[0]!);
    const batched = await runner.run(e2d2Family, ps, mixed);
    assert.deepEqual(toks(batched), toks(alone), runner.dir.manifest.name);
  }
});

test('ddpm_cache: the same tokens as ddpm with fewer network calls (a step that changed nothing reuses the logits)', async () => {
  const p = { ...base, sampler: 'ddpm', steps: 16, maxTokens: 16 };
  const plain = await r.run(e2d2Family, prompts, p);
  const cached = await r.run(e2d2Family, prompts, { ...p, sampler: 'ddpm_cache' });
  assert.deepEqual(toks(cached), toks(plain));
  for (let i = 0; i < prompts.length; i++) assert.ok(cached[i]!.usage.nfe < plain[i]!.usage.nfe, `row ${i}: ${cached[i]!.usage.nfe} vs ${plain[i]!.usage.nfe}`);
  const again = await r.run(makeE2d2Family({ recompute: true }), prompts, { ...p, sampler: 'ddpm_cache' });
  assert.deepEqual(toks(again), toks(plain));
});

test('cached encoder state and re-encoding the context every step give the same tokens', async () => {
  const small = prompts.map((p) => p.map((t) => t % 90));
  for (const [runner, ps] of [[r, prompts], [random, small]] as const) {
    for (const temperature of [0, 1]) {
      for (const blockSize of [4, 8]) {
        const p = { ...base, temperature, blockSize, maxTokens: 24 };
        const cached = await runner.run(e2d2Family, ps, p);
        const again = await runner.run(makeE2d2Family({ recompute: true }), ps, p);
        assert.deepEqual(toks(again), toks(cached), `${runner.dir.manifest.name}: temperature ${temperature}, block ${blockSize}`);
        // The baseline pays an encoder call before every decoder step.
        for (let i = 0; i < ps.length; i++) assert.ok(again[i]!.usage.nfe > cached[i]!.usage.nfe);
      }
    }
  }
  // The context reaches the decoder: greedy continuations of two whole-block prompts differ.
  const g = { ...base, temperature: 0, maxTokens: 8 };
  const [a, b] = await random.run(e2d2Family, [[60, 61, 62, 63, 64, 65, 66, 67], [70, 71, 72, 73, 74, 75, 76, 77]], g);
  assert.notDeepEqual(a!.tokens, b!.tokens);
});

test('blocks stream whole, in order, and add up to the final tokens', async () => {
  const [x] = await r.run(e2d2Family, [prompts[0]!], { ...base, maxTokens: 17 });
  assert.deepEqual(x!.chunks.flat(), x!.tokens);
  assert.equal(x!.tokens.length, 17);
  // Prompt of 6 = one whole block + 2 lead tokens: the first block yields 2, then blocks of 4, the last cut to fit.
  assert.deepEqual(x!.chunks.map((c) => c.length), [2, 4, 4, 4, 3]);
});

test('a stop id ends the sequence at its first occurrence (ignore_eos off)', async () => {
  const p = { ...base, maxTokens: 16, ignoreEos: false };
  const [free] = await r.run(e2d2Family, [prompts[1]!], p);
  assert.ok(free!.tokens.length >= 2, `the free run ended after ${free!.tokens.length} tokens`);
  const stopTok = free!.tokens[Math.min(5, free!.tokens.length - 1)]!;
  const [stopped] = await r.run(e2d2Family, [prompts[1]!], { ...p, stopTokenIds: [stopTok] });
  assert.deepEqual(stopped!.tokens, free!.tokens.slice(0, free!.tokens.indexOf(stopTok)));
  assert.equal(stopped!.finishReason, 'stop');
});

test('generation runs past the model length (the window slides, old blocks leave the cache)', async () => {
  const [x] = await r.run(e2d2Family, [prompts[0]!], { ...base, maxTokens: 150, steps: 1 });
  assert.equal(x!.tokens.length, 150);
});

test('bad block_size and sampler are refused naming the field', () => {
  const m = r.dir.manifest;
  assert.throws(() => e2d2Family.validate({ ...base, blockSize: 5 }, m), (e: unknown) => e instanceof EngineRequestError && e.param === 'block_size');
  assert.throws(() => e2d2Family.validate({ ...base, sampler: 'duo' }, m), (e: unknown) => e instanceof EngineRequestError && e.param === 'sampler');
});
