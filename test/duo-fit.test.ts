import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkUniformSamplerFits, SamplerMismatch } from '../engine/samplers/duo-fit.js';

const duo = { name: 'duo-tiny', noise: { type: 'uniform' as const, schedule: 'loglinear' as const, eps: 1e-3 }, samplers: ['duo', 'duo_greedy'], special_tokens: { mask: null, bos: null, eos: 1, pad: null } };
const mdlm = { name: 'mdlm-tiny', noise: { type: 'masked' as const, schedule: 'loglinear' as const, eps: 1e-3 }, samplers: ['ddpm', 'remdm'], special_tokens: { mask: 9, bos: null, eos: 1, pad: null } };

function paramOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SamplerMismatch);
    return e.param;
  }
  assert.fail('expected SamplerMismatch');
}

test('samplers that fit pass', () => {
  checkUniformSamplerFits(duo, 'duo', false);
  checkUniformSamplerFits(duo, 'duo_greedy', false);
  checkUniformSamplerFits(mdlm, 'remdm', true);
  checkUniformSamplerFits(mdlm, 'ddpm', false);
});

test('a sampler that does not fit the model names `sampler`; stray remasking names `remasking`', () => {
  assert.equal(paramOf(() => checkUniformSamplerFits(mdlm, 'duo', false)), 'sampler');
  assert.equal(paramOf(() => checkUniformSamplerFits(duo, 'remdm', true)), 'sampler');
  assert.equal(paramOf(() => checkUniformSamplerFits(duo, 'duo', true)), 'remasking');
  assert.equal(paramOf(() => checkUniformSamplerFits(mdlm, 'ddpm', true)), 'remasking');
  assert.equal(paramOf(() => checkUniformSamplerFits({ ...duo, samplers: ['duo'] }, 'duo_greedy', false)), 'sampler');
});
