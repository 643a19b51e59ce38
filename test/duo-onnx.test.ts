import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { duoPlan, duoPrior, duoStep, type DuoSampler } from '../engine/samplers/duo.js';
import { argmax } from '../engine/samplers/duo-posterior.js';
import { rngOf } from './helpers/seeded-rng.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'uniform');
const V = 16;

async function logitsOf(s: ort.InferenceSession, tokens: number[], sigma: number): Promise<Float32Array> {
  const L = tokens.length;
  const out = await s.run({
    tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, L]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
    sigma: new ort.Tensor('float32', Float32Array.of(sigma), [1]),
  });
  return out.logits!.data as Float32Array;
}

test('a Duo decode over a real graph: sigma is fed, N steps are N calls, seeded', async () => {
  const s = await ort.InferenceSession.create(join(FIX, 'duo.onnx'), { intraOpNumThreads: 1 });
  const prompt = [3, 5];
  const L = 10;
  const a = await logitsOf(s, [...prompt, 1, 2, 3], 0.1);
  const b = await logitsOf(s, [...prompt, 1, 2, 3], 5);
  assert.notDeepEqual(Array.from(a), Array.from(b), 'the graph reads sigma');

  const decode = async (seed: number, sampler: DuoSampler, steps: number): Promise<{ out: number[]; calls: number; sigmas: number[]; last: Float32Array }> => {
    const rng = rngOf(seed);
    const canvas = duoPrior(L, V, rng);
    let calls = 0;
    const sigmas: number[] = [];
    let last: Float32Array = new Float32Array();
    for (let k = 0; k < steps; k++) {
      const plan = duoPlan(k, steps, 1e-3);
      sigmas.push(plan.sigma);
      last = await logitsOf(s, [...prompt, ...canvas], plan.sigma);
      calls++;
      duoStep({ sampler, plan, logits: last, canvasStart: prompt.length, V, canvas, x0: { temperature: 1, topP: 0.9, topK: 0 }, rng });
    }
    return { out: Array.from(canvas), calls, sigmas, last };
  };
  for (const steps of [8, 16, 32]) {
    const r = await decode(1, 'duo', steps);
    assert.equal(r.calls, steps);
    assert.ok(r.sigmas.every((x, i) => i === 0 || x < r.sigmas[i - 1]!), 'noise level falls every step');
    assert.deepEqual((await decode(1, 'duo', steps)).out, r.out, 'same seed, same tokens');
  }
  const g = await decode(2, 'duo_greedy', 8);
  for (let i = 0; i < L; i++) assert.equal(g.out[i], argmax(g.last, (prompt.length + i) * V, V), 'greedy tail = arg-max');
  const outs = new Set<string>();
  for (let seed = 1; seed <= 6; seed++) outs.add((await decode(seed, 'duo', 8)).out.join(','));
  assert.ok(outs.size > 1, 'different seeds explore different samples');
});
