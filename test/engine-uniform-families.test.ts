// The Duo (with LDDM-U) and ReMDM/LDDM families inside EngineCore on the shipped models: the settings checks
// the server runs before admission (validateParams), each naming the request field, and the
// step stream of a Duo window.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineCore, EngineRequestError } from '../engine/core.js';
import { validateParams } from '../engine/validate.js';
import type { DoneMsg, GenerationParams, StepMsg } from '../engine/protocol.js';

const cores: Record<string, EngineCore> = {};
const events = new Map<number, { tokens: number[]; steps: StepMsg[]; done: (d: DoneMsg) => void }>();

before(async () => {
  for (const [k, dir] of [['duo', 'models/zoo/duo-brown'], ['lddm', 'models/zoo/lddm-brown'], ['lddmu', 'models/zoo/lddmu-brown'], ['mdlm', 'models/zoo/tiny-mdlm']] as const) {
    cores[k] = await EngineCore.open({ modelDir: dir, device: 'cpu', threads: 1 }, {
      commit: (id, t) => events.get(id)?.tokens.push(...t),
      step: (m) => events.get(m.id)?.steps.push(m),
      error: (e) => assert.fail(`engine error: ${e.message}`),
      done: (d) => events.get(d.id)?.done(d),
    });
  }
});
after(async () => {
  for (const c of Object.values(cores)) await c.close();
});

let nextId = 1;
function params(core: EngineCore, over: Partial<GenerationParams>): GenerationParams {
  return { ...core.model.defaults, maxTokens: 8, steps: 4, seed: 1, stopTokenIds: [], streamSteps: false, ignoreEos: true, ...over };
}

function refusedParam(k: string, over: Partial<GenerationParams>): string | undefined {
  const core = cores[k]!;
  try {
    validateParams(core.model, params(core, over));
  } catch (err) {
    assert.ok(err instanceof EngineRequestError, String(err));
    return err.param;
  }
  assert.fail(`${k} ${JSON.stringify(over)} was accepted`);
}

test('what does not fit the model is refused, naming the field', () => {
  assert.equal(refusedParam('duo', { sampler: 'ddpm' }), 'sampler');
  assert.equal(refusedParam('duo', { sampler: 'duo', remasking: { schedule: 'cap', eta: 0.1 } }), 'remasking');
  assert.equal(refusedParam('duo', { sampler: 'duo', blockSize: 500 }), 'block_size');
  assert.equal(refusedParam('lddm', { sampler: 'confidence_topk' }), 'sampler');
  assert.equal(refusedParam('lddmu', { sampler: 'ddpm' }), 'sampler');
  assert.equal(refusedParam('lddmu', { sampler: 'remdm' }), 'sampler');
  assert.equal(refusedParam('lddmu', { sampler: 'duo_greedy', remasking: { schedule: 'cap', eta: 0.1 } }), 'remasking');
  assert.equal(refusedParam('lddmu', { sampler: 'duo', blockSize: 128 }), 'block_size');
  assert.equal(refusedParam('lddm', { sampler: 'ddpm', remasking: { schedule: 'cap', eta: 0.1 } }), 'remasking');
  assert.equal(refusedParam('mdlm', { sampler: 'remdm', remasking: { schedule: 'cap', eta: 2 } }), 'remasking.eta');
  assert.equal(refusedParam('mdlm', { sampler: 'remdm', remasking: { schedule: 'loop', tOn: 1 } }), 'remasking.t_on');
  assert.equal(refusedParam('mdlm', { sampler: 'remdm', remasking: { schedule: 'loop', tOn: 0.3, tOff: 0.4 } }), 'remasking.t_off');
});

function run(k: string, over: Partial<GenerationParams>): Promise<{ tokens: number[]; steps: StepMsg[]; done: DoneMsg }> {
  const core = cores[k]!;
  const id = nextId++;
  return new Promise((resolve) => {
    const r = { tokens: [] as number[], steps: [] as StepMsg[] };
    events.set(id, { ...r, done: (d) => resolve({ ...r, done: d }) });
    core.generate(id, [5, 6, 7], params(core, over));
  });
}

test('a Duo window streams its steps, then commits its tokens at once', async () => {
  const r = await run('duo', { sampler: 'duo', maxTokens: 10, steps: 5, streamSteps: true });
  assert.equal(r.done.reason, 'length');
  assert.equal(r.tokens.length, 10);
  assert.deepEqual(r.steps.map((s) => s.step), [1, 2, 3, 4, 5]);
  for (const s of r.steps) {
    assert.equal(s.offset, 0);
    assert.equal(s.canvas.length, 10);
  }
  assert.deepEqual(r.steps.at(-1)!.canvas, r.tokens, 'the last step is what commits');
  assert.deepEqual(r.done.usage, { promptTokens: 3, completionTokens: 10, nfe: 5, cachedTokens: 0 });
});

test('LDDM and ReMDM: the canvas starts all [MASK] and ends with none; same seed, same tokens', async () => {
  const mask = cores.lddm!.model.maskId!;
  const a = await run('lddm', { sampler: 'remdm', remasking: { schedule: 'rescale', eta: 0.5 }, maxTokens: 12, steps: 6, streamSteps: true, seed: 4 });
  const b = await run('lddm', { sampler: 'remdm', remasking: { schedule: 'rescale', eta: 0.5 }, maxTokens: 12, steps: 6, seed: 4 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.ok(a.steps[0]!.canvas.includes(mask));
  assert.ok(!a.tokens.includes(mask));
  assert.equal(a.done.usage.nfe, 6);
});

test('LDDM-U: a Duo window that carries the latent streams its steps and commits at once; same seed, same tokens', async () => {
  assert.equal(cores.lddmu!.model.family, 'duo');
  for (const sampler of ['duo', 'duo_greedy']) {
    const a = await run('lddmu', { sampler, maxTokens: 10, steps: 5, streamSteps: true, seed: 6 });
    const b = await run('lddmu', { sampler, maxTokens: 10, steps: 5, seed: 6 });
    assert.deepEqual(a.tokens, b.tokens, sampler);
    assert.equal(a.tokens.length, 10);
    assert.deepEqual(a.steps.map((s) => s.step), [1, 2, 3, 4, 5]);
    assert.deepEqual(a.steps.at(-1)!.canvas, a.tokens, 'the last step is what commits');
    assert.deepEqual(a.done.usage, { promptTokens: 3, completionTokens: 10, nfe: 5, cachedTokens: 0 });
  }
});
