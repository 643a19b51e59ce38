// Step frames with drafts over a real WebSocket client: every position marked final, provisional
// or masked (test/helpers/step-marks.ts's rules) on MDLM (decoded tokens are final), ReMDM
// (provisional while remasking can still reach them) and Duo (every token provisional until its
// window's last step); `stream_drafts` adds the model's arg max for each masked position.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type Served } from './helpers/served.js';
import { checkStepMarks, type StepLike } from './helpers/step-marks.js';
import { wsGenerate, type WsFrame } from './helpers/ws-run.js';

let mdlm: Served;
let duo: Served;
before(async () => {
  [mdlm, duo] = await Promise.all([serve(), serve({ modelDir: 'models/zoo/duo-brown' })]);
});
after(async () => {
  await Promise.all([mdlm.close(), duo.close()]);
});

async function stream(s: Served, settings: Record<string, unknown>): Promise<{ steps: (StepLike & WsFrame)[]; committed: number[]; done: WsFrame }> {
  const frames = await wsGenerate(s.base, { id: 'g', prompt: 'The river', settings: { max_tokens: 24, ignore_eos: true, seed: 4, stream_steps: true, ...settings } });
  const done = frames.at(-1)!;
  assert.equal(done.type, 'done', JSON.stringify(done));
  const committed = frames.filter((f) => f.type === 'delta').flatMap((f) => f.tokens as number[]);
  assert.equal(committed.length, 24);
  return { steps: frames.filter((f) => f.type === 'step') as (StepLike & WsFrame)[], committed, done };
}

test('MDLM: a decoded position is final at once and never changes; the frames end all final', async () => {
  const mask = mdlm.engine.model.maskId;
  for (const sampler of ['ddpm', 'confidence_topk', 'entropy_bound']) {
    const { steps, committed } = await stream(mdlm, { sampler, steps: 12 });
    const r = checkStepMarks(steps, mask, committed);
    assert.ok(r.finals >= 24, `${sampler}: ${r.finals} final positions`);
    assert.equal(r.provisionalChanges, 0, sampler);
    assert.ok(!steps.some((f) => f.marks.includes('p')), `${sampler}: SUBS tokens are never provisional`);
    assert.ok(steps[0]!.marks.includes('m'), `${sampler}: the first step leaves masks`);
    assert.ok(!('drafts' in steps[0]!), 'no drafts unless asked');
    assert.ok(/^f+$/.test(steps.at(-1)!.marks), `${sampler}: the last step leaves the window all final`);
  }
});

test('ReMDM: decoded tokens are provisional while remasking may reach them, and some change', async () => {
  const { steps, committed } = await stream(mdlm, { sampler: 'remdm', remasking: { schedule: 'cap', eta: 0.5 }, steps: 16 });
  const r = checkStepMarks(steps, mdlm.engine.model.maskId, committed);
  assert.ok(steps.some((f) => f.marks.includes('p')), 'provisional positions');
  assert.ok(r.provisionalChanges > 0, 'a provisional token was remasked or replaced');
  assert.ok(/^f+$/.test(steps.at(-1)!.marks), `the window's last step is final: ${steps.at(-1)!.marks}`);
  // Without remasking (eta 0) ReMDM is MDLM's ancestral step: nothing provisional.
  const plain = await stream(mdlm, { sampler: 'remdm', remasking: { schedule: 'cap', eta: 0 }, steps: 16 });
  checkStepMarks(plain.steps, mdlm.engine.model.maskId, plain.committed);
  assert.ok(!plain.steps.some((f) => f.marks.includes('p')));
});

test('Duo: every token provisional until its window ends, and they do change', async () => {
  const { steps, committed } = await stream(duo, { steps: 8 });
  const r = checkStepMarks(steps, null, committed);
  assert.ok(r.provisionalChanges > 0, 'Duo resampled some provisional tokens');
  assert.ok(/^p+$/.test(steps[0]!.marks), steps[0]!.marks);
  assert.ok(/^f+$/.test(steps.at(-1)!.marks), steps.at(-1)!.marks);
  assert.ok(r.finals >= 24);
});

test('stream_drafts: each masked position carries the arg max the next local step decodes', async () => {
  const mask = mdlm.engine.model.maskId!;
  // Greedy ddpm_cache: after a step that changed nothing, the next step reuses the same logits,
  // so what it decodes must be exactly the drafts the frame before showed.
  const { steps, committed } = await stream(mdlm, { sampler: 'ddpm_cache', steps: 48, temperature: 0, stream_drafts: true, stream_steps: false });
  checkStepMarks(steps, mask, committed);
  let checked = 0;
  steps.forEach((f, k) => {
    const drafts = f.drafts as (number | null)[];
    const texts = f.drafts_text as (string | null)[];
    assert.equal(drafts.length, f.canvas.length);
    assert.equal(texts.length, f.canvas.length);
    drafts.forEach((d, i) => {
      assert.equal(d === null, f.marks[i] !== 'm', `step ${f.step}, position ${i}`);
      assert.equal(texts[i] === null, d === null);
      if (d !== null) assert.ok(Number.isInteger(d) && d !== mask && d >= 0 && d < mdlm.engine.model.vocabSize);
    });
    const prev = steps[k - 1];
    const next = steps[k + 1];
    if (!prev || !next || prev.offset !== f.offset || next.offset !== f.offset) return;
    if (prev.canvas.some((t, i) => t !== f.canvas[i])) return; // this step changed a token: the next one calls the network
    f.canvas.forEach((t, i) => {
      if (t === mask && next.canvas[i] !== mask) {
        assert.equal(next.canvas[i], drafts[i], `step ${next.step}, position ${i}: decoded ${next.canvas[i]}, drafted ${drafts[i]}`);
        checked++;
      }
    });
  });
  assert.ok(checked >= 3, `tokens checked against their drafts: ${checked}`);
});

test('stream_drafts on a model with nothing masked (Duo) is refused naming the field', async () => {
  const frames = await wsGenerate(duo.base, { id: 'd', prompt: 'x', settings: { stream_drafts: true } });
  assert.deepEqual(frames.map((f) => f.type), ['error']);
  assert.equal(frames[0]!.param, 'settings.stream_drafts');
  assert.equal(frames[0]!.code, 'unsupported_parameter');
});
