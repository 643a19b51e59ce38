// The adaptive samplers and the step marks on the block families (BD3-LM, E2D2), through the
// engine process on their zoo models: both rules decode every block, gamma 0 spends a call per
// token where a huge bound spends one per block, and the step messages keep the marks' rules
// (on ASSD too).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine } from '../engine/client.js';
import type { Engine } from '../engine/api.js';
import type { DoneMsg, GenerationParams, StepMsg } from '../engine/protocol.js';
import { checkStepMarks } from './helpers/step-marks.js';

const MODELS = ['models/zoo/bd3lm-brown', 'models/zoo/e2d2-brown', 'models/zoo/asarm-brown'];
const engines: Engine[] = [];
before(async () => {
  engines.push(...(await Promise.all(MODELS.map((modelDir) => startEngine({ modelDir, device: 'cpu', threads: 1 })))));
});
after(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

async function decode(e: Engine, p: Partial<GenerationParams>): Promise<{ tokens: number[]; steps: StepMsg[]; done: DoneMsg }> {
  const params: GenerationParams = { ...e.model.defaults, maxTokens: 24, seed: 2, stopTokenIds: [], streamSteps: true, ignoreEos: true, ...p };
  delete params.minEntropy; // the entropy stop could end a block model's run early
  const tokens: number[] = [];
  const steps: StepMsg[] = [];
  const done = await new Promise<DoneMsg>((resolve, reject) => {
    e.generate([5, 6, 7, 8, 9, 10, 11, 12], params, { commit: (t) => tokens.push(...t), step: (s) => steps.push(s), error: (m) => reject(new Error(m.message)), done: resolve });
  });
  return { tokens, steps, done };
}

test('entropy_bound and confidence_factor on BD3-LM and E2D2: calls follow the bound, marks hold', async () => {
  for (const e of engines.slice(0, 2)) {
    const name = e.model.name;
    // First a run that puts the prompt's blocks in the shared cache, so that the runs compared
    // below both find them there.
    await decode(e, { sampler: 'entropy_bound', entropyBound: 1e6 });
    const one = await decode(e, { sampler: 'entropy_bound', entropyBound: 0 });
    const all = await decode(e, { sampler: 'entropy_bound', entropyBound: 1e6 });
    const factor = await decode(e, { sampler: 'confidence_factor', confidenceFactor: 1e6 });
    for (const r of [one, all, factor]) {
      assert.equal(r.tokens.length, 24, name);
      checkStepMarks(r.steps, e.model.maskId, r.tokens);
      assert.ok(!r.steps.some((s) => s.marks.includes('p')), `${name}: SUBS tokens are never provisional`);
    }
    // One step message per denoising step: a token each at gamma 0, a block each at a huge bound
    // (the prompt is two whole blocks, so every generated block starts all masked).
    assert.equal(one.steps.length, 24, name);
    assert.equal(all.steps.length, 24 / 4, `${name}: blocks of 4`);
    assert.equal(factor.steps.length, 24 / 4, name);
    assert.equal(one.done.usage.nfe - all.done.usage.nfe, 24 - 6, `${name}: the calls saved are the steps saved`);
  }
});

test('drafts on a block: the arg max for each masked position of the block', async () => {
  const e = engines[0]!;
  const r = await decode(e, { sampler: 'entropy_bound', entropyBound: 0, streamDrafts: true });
  for (const s of r.steps) {
    assert.equal(s.drafts!.length, s.canvas.length);
    s.drafts!.forEach((d, i) => assert.equal(d < 0, s.canvas[i] !== e.model.maskId, `step ${s.step}, position ${i}`));
  }
});

test('ASSD: an accepted token is final, the rest masked, and they never change', async () => {
  const e = engines[2]!;
  const r = await decode(e, {});
  assert.equal(r.tokens.length, 24);
  const marks = checkStepMarks(r.steps, e.model.maskId, r.tokens);
  assert.ok(marks.finals >= 24 && !r.steps.some((s) => s.marks.includes('p')));
});
