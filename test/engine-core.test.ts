// The engine end to end through its process boundary, on real ONNX graphs: reproducibility,
// batching that does not change results, ddpm_cache's saved calls, streaming, stop tokens,
// cancel, request errors, and surviving a crashed engine process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine } from '../engine/client.js';
import type { Engine } from '../engine/api.js';
import type { DoneMsg, ErrorMsg, GenerationParams, StepMsg } from '../engine/protocol.js';
import { EOS, buildFixedLogitsModel } from './helpers/fixed-logits.js';

const TINY = 'models/zoo/tiny-mdlm';

interface Run { tokens: number[]; done: DoneMsg; errors: ErrorMsg[]; steps: StepMsg[] }

function run(engine: Engine, prompt: number[], p: Partial<GenerationParams>): Promise<Run> {
  const params: GenerationParams = {
    ...engine.model.defaults, maxTokens: 24, steps: 8, seed: 1, stopTokenIds: [], streamSteps: false, ignoreEos: true, ...p,
  };
  return new Promise((resolve) => {
    const r: Run = { tokens: [], done: null as unknown as DoneMsg, errors: [], steps: [] };
    engine.generate(prompt, params, {
      commit: (t) => r.tokens.push(...t),
      step: (s) => r.steps.push(s),
      error: (e) => r.errors.push(e),
      done: (d) => { r.done = d; resolve(r); },
    });
  });
}

let tiny: Awaited<ReturnType<typeof startEngine>>;
let fixed: Engine;
before(async () => {
  tiny = await startEngine({ modelDir: TINY, device: 'cpu', threads: 1, maxBatch: 8 });
  fixed = await startEngine({ modelDir: buildFixedLogitsModel(), device: 'cpu', threads: 1 });
});
after(async () => {
  await tiny.close();
  await fixed.close();
});

test('the same seed gives the same tokens; another seed differs', async () => {
  for (const sampler of ['ddpm', 'first_hitting', 'confidence_topk', 'confidence_threshold']) {
    const a = await run(tiny, [10, 20, 30], { sampler, seed: 5 });
    const b = await run(tiny, [10, 20, 30], { sampler, seed: 5 });
    const c = await run(tiny, [10, 20, 30], { sampler, seed: 6 });
    assert.equal(a.tokens.length, 24, sampler);
    assert.deepEqual(a.tokens, b.tokens, sampler);
    assert.notDeepEqual(a.tokens, c.tokens, sampler);
  }
});

test('a batched sequence gets the same tokens as alone (padding is masked out)', async () => {
  const reqs = [
    { prompt: [5, 6, 7], seed: 1 }, { prompt: [100, 200, 300, 400, 500, 600, 700], seed: 2 },
    { prompt: [42], seed: 3 }, { prompt: [9, 9, 9, 9, 9], seed: 4 },
  ];
  const alone: Run[] = [];
  for (const r of reqs) alone.push(await run(tiny, r.prompt, { seed: r.seed, sampler: 'ddpm', maxTokens: 40 }));
  const batchSizes: number[] = [];
  const unfollow = tiny.onStats((s) => batchSizes.push(...s.batchSizes));
  const together = await Promise.all(reqs.map((r) => run(tiny, r.prompt, { seed: r.seed, sampler: 'ddpm', maxTokens: 40 })));
  unfollow();
  together.forEach((t, i) => assert.deepEqual(t.tokens, alone[i]!.tokens, `request ${i}`));
  assert.ok(batchSizes.some((b) => b > 1), `calls were batched: ${batchSizes.slice(0, 20)}`);
});

test('ddpm_cache: same tokens as ddpm for the same seed, with fewer network calls', async () => {
  const p = { maxTokens: 16, steps: 64, seed: 9 };
  for (const engine of [tiny, fixed]) {
    const plain = await run(engine, [1, 2], { ...p, sampler: 'ddpm' });
    const cached = await run(engine, [1, 2], { ...p, sampler: 'ddpm_cache' });
    assert.deepEqual(cached.tokens, plain.tokens);
    assert.ok(cached.done.usage.nfe < plain.done.usage.nfe, `nfe ${cached.done.usage.nfe} < ${plain.done.usage.nfe}`);
    assert.ok(cached.done.usage.nfe <= 16, 'at most one call per decoded token');
  }
});

test('stream_steps: step canvases lead to the committed tokens; commits add up to the output', async () => {
  const r = await run(tiny, [3, 4], { streamSteps: true, sampler: 'confidence_topk', maxTokens: 12, steps: 4 });
  assert.equal(r.steps.length, 4);
  const last = r.steps.at(-1)!;
  assert.deepEqual(last.canvas, r.tokens);
  assert.ok(r.steps[0]!.canvas.includes(tiny.model.maskId!), 'the first step still has masked positions');
  assert.equal(r.done.usage.nfe, 4);
  assert.equal(r.done.usage.completionTokens, 12);
});

test('long outputs slide the window: more tokens than the model length', async () => {
  const r = await run(tiny, [], { sampler: 'confidence_topk', maxTokens: tiny.model.maxLength + 40, steps: 4 });
  assert.equal(r.tokens.length, tiny.model.maxLength + 40);
  assert.equal(r.done.reason, 'length');
});

test('EOS ends the sequence unless ignore_eos (fixed logits: EOS has probability ~5%)', async () => {
  const r = await run(fixed, [0], { ignoreEos: false, maxTokens: 60, sampler: 'ddpm', steps: 8, seed: 3 });
  assert.equal(r.done.reason, 'stop');
  assert.ok(!r.tokens.includes(EOS), 'EOS itself is not part of the output');
  const ign = await run(fixed, [0], { ignoreEos: true, maxTokens: 60, sampler: 'ddpm', steps: 8, seed: 3 });
  assert.equal(ign.tokens.length, 60);
  assert.equal(ign.done.reason, 'length');
});

test('cancel stops a sequence with reason cancelled', async () => {
  const params: GenerationParams = { ...tiny.model.defaults, maxTokens: 400, steps: 64, sampler: 'ddpm', seed: 1, stopTokenIds: [], streamSteps: false, ignoreEos: true };
  const done = await new Promise<DoneMsg>((resolve) => {
    const h = tiny.generate([1], params, { commit: () => h.cancel(), done: resolve });
  });
  assert.equal(done.reason, 'cancelled');
  assert.ok(done.usage.completionTokens < 400);
});

test('a sampler the model does not list is an error naming it, and the engine keeps serving', async () => {
  const r = await run(tiny, [1], { sampler: 'duo_ancestral' });
  assert.equal(r.done.reason, 'error');
  assert.match(r.errors[0]!.message, /sampler 'duo_ancestral'/);
  assert.equal((await run(tiny, [1], {})).done.reason, 'length');
});

test('a crashed engine process: in-flight sequences end with engine_crashed, then the engine serves again', async () => {
  const engine = await startEngine({ modelDir: TINY, device: 'cpu', threads: 1 });
  try {
    const params: GenerationParams = { ...engine.model.defaults, maxTokens: 500, steps: 200, sampler: 'ddpm', seed: 1, stopTokenIds: [], streamSteps: false, ignoreEos: true };
    const pid = engine.pid!;
    const outcome = new Promise<{ done: DoneMsg; errors: ErrorMsg[] }>((resolve) => {
      const errors: ErrorMsg[] = [];
      let killed = false;
      engine.generate([1, 2], params, {
        commit: () => { if (!killed) { killed = true; process.kill(pid, 'SIGKILL'); } },
        error: (e) => errors.push(e),
        done: (d) => resolve({ done: d, errors }),
      });
    });
    const { done, errors } = await outcome;
    assert.equal(done.reason, 'error');
    assert.equal(errors[0]?.code, 'engine_crashed');
    const after = await run(engine, [1], { maxTokens: 8 });
    assert.equal(after.done.reason, 'length');
    assert.notEqual(engine.pid, pid, 'a new engine process');
    assert.equal(engine.restarts, 1);
  } finally {
    await engine.close();
  }
});

test('an unknown device or a model that is not there fails startEngine with a clear message', async () => {
  await assert.rejects(startEngine({ modelDir: 'models/zoo/does-not-exist', device: 'cpu' }), /no model\.json/);
});
