// Pure parts of the server: the slow-reader queue, settings resolution, the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutboundQueue, frameBytes, type OutFrame } from '../server/ws-queue.js';
import { parseConfig, ConfigError } from '../server/config.js';
import { resolveParams } from '../server/settings.js';
import { ApiError } from '../server/errors.js';
import type { ModelInfo } from '../engine/protocol.js';
import { loadModelDir } from '../engine/manifest.js';

function take(q: OutboundQueue): OutFrame | undefined {
  let got: OutFrame | undefined;
  q.shift((f) => { got = f; });
  return got;
}

test('the slow-reader queue merges deltas and keeps only the newest step canvas', () => {
  const q = new OutboundQueue();
  q.push({ type: 'delta', id: 'a', text: 'he', tokens: [1] });
  q.push({ type: 'delta', id: 'a', text: 'llo', tokens: [2, 3] });
  q.push({ type: 'step', id: 'a', step: 1, offset: 0, canvas: [9, 9, 9], marks: 'mmm' });
  q.push({ type: 'delta', id: 'b', text: 'x', tokens: [4] });
  q.push({ type: 'step', id: 'a', step: 2, offset: 0, canvas: [5, 9, 9], marks: 'fmm' });
  assert.equal(q.length, 3);
  const total = q.bytes;
  const first = take(q)!;
  assert.deepEqual(first, { type: 'delta', id: 'a', text: 'hello', tokens: [1, 2, 3] });
  assert.equal(q.bytes, total - frameBytes(first));
  assert.deepEqual(take(q), { type: 'delta', id: 'b', text: 'x', tokens: [4] });
  assert.equal((take(q) as { step: number }).step, 2);
  assert.equal(q.bytes, 0);
  assert.equal(take(q), undefined);
});

test("a queued frame's callback runs after it is handed on, or when the queue is dropped", () => {
  const q = new OutboundQueue();
  const events: string[] = [];
  q.push({ type: 'delta', id: 'a', text: 'x', tokens: [1] });
  q.push({ type: 'done', id: 'a', finish_reason: 'stop', stop_reason: null, usage: {} }, () => events.push('a sent'));
  q.push({ type: 'done', id: 'b', finish_reason: 'stop', stop_reason: null, usage: {} }, () => events.push('b dropped'));
  q.shift((f) => events.push(`send ${f.type}`));
  assert.deepEqual(events, ['send delta']);
  q.shift((f) => events.push(`send ${f.type} ${f.id}`));
  assert.deepEqual(events, ['send delta', 'send done a', 'a sent']);
  q.clear();
  assert.deepEqual(events, ['send delta', 'send done a', 'a sent', 'b dropped']);
  q.clear();
  assert.equal(events.length, 4, 'each callback runs once');
});

test('the queue stays bounded under a flood of step canvases', () => {
  const q = new OutboundQueue();
  for (let i = 0; i < 10_000; i++) q.push({ type: 'step', id: String(i % 4), step: i, offset: 0, canvas: new Array(64).fill(1), marks: 'f'.repeat(64) });
  assert.equal(q.length, 4);
  assert.ok(q.bytes < 4 * 1024);
});

test('CLI: flags win over env, every flag has an env, bad values are errors', () => {
  const c = parseConfig(['--port', '9000', '--api-key', 'a', '--api-key', 'b'], { PORT: '1', DLM_DEVICE: 'cuda', DLM_THREADS: '3', DLM_MODEL: '/m' });
  assert.ok(c !== 'help');
  assert.equal(c.port, 9000);
  assert.equal(c.device, 'cuda');
  assert.equal(c.threads, 3);
  assert.equal(c.modelDir, '/m');
  assert.deepEqual(c.apiKeys, ['a', 'b']);
  const e = parseConfig([], { DLM_API_KEYS: 'x, y,' });
  assert.ok(e !== 'help');
  assert.deepEqual(e.apiKeys, ['x', 'y']);
  assert.equal(e.port, 8080);
  assert.throws(() => parseConfig(['--device', 'tpu'], {}), ConfigError);
  assert.equal(e.precision, 'auto');
  const p = parseConfig(['--precision', 'fp32'], { DLM_PRECISION: 'int8' });
  assert.ok(p !== 'help' && p.precision === 'fp32');
  const pe = parseConfig([], { DLM_PRECISION: 'int8' });
  assert.ok(pe !== 'help' && pe.precision === 'int8');
  assert.throws(() => parseConfig(['--precision', 'int4'], {}), /--precision: expected fp32, int8, auto, got 'int4'/);
  assert.throws(() => parseConfig(['--port=-2'], {}), ConfigError);
  assert.throws(() => parseConfig(['--bogus'], {}));
  assert.equal(parseConfig(['-h'], {}), 'help');
});

// A BD3-LM model of 64 tokens: the shipped one's manifest with the sizes this test reads.
const base = loadModelDir('models/zoo/bd3lm-brown').manifest;
const model: ModelInfo = {
  name: 'm',
  family: 'bd3lm',
  vocabSize: 100,
  maxLength: 64,
  maskId: 99,
  eosId: 1,
  samplers: ['ddpm', 'confidence_topk'],
  defaults: { maxTokens: 48, sampler: 'ddpm', steps: 16, temperature: 1, topP: 1, topK: 0, ignoreEos: false, blockSize: 8 },
  limits: { maxSteps: 256, blockSizes: [4, 8, 16], maxSpeculativeK: null, maxTokens: null },
  device: 'cpu',
  precision: 'fp32',
  manifest: {
    ...base, name: 'm', vocab_size: 100, max_length: 64, samplers: ['ddpm', 'confidence_topk'],
    special_tokens: { ...base.special_tokens, mask: 99, eos: 1 }, block: { size: 8, sizes: [4, 8, 16] },
  },
};

test('settings: defaults fill in, max_tokens shrinks to the room left, EOS stops unless ignored', () => {
  const p = resolveParams({}, model, 30, 5);
  assert.equal(p.maxTokens, 34);
  assert.equal(p.sampler, 'ddpm');
  assert.equal(p.blockSize, 8);
  assert.deepEqual(p.stopTokenIds, [1]);
  assert.equal(p.seed, 5);
  const q = resolveParams({ max_completion_tokens: 10, block_size: 16, ignore_eos: true, top_k: -1, sampler: 'confidence_topk' }, model, 4, 0);
  assert.equal(q.maxTokens, 10);
  assert.equal(q.blockSize, 16);
  assert.deepEqual(q.stopTokenIds, []);
  assert.equal(q.topK, 0);
});

test('settings: what the model does not support is a 400 naming the param', () => {
  const param = (fn: () => unknown): string | null => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 400);
      return err.param;
    }
    assert.fail('expected an ApiError');
  };
  assert.equal(param(() => resolveParams({ block_size: 5 }, model, 1, 0)), 'block_size');
  assert.equal(param(() => resolveParams({ speculative_k: 2 }, model, 1, 0, 'settings.')), 'settings.speculative_k');
  assert.equal(param(() => resolveParams({ steps: 257 }, model, 1, 0)), 'steps');
  assert.equal(param(() => resolveParams({ max_tokens: 60 }, model, 5, 0)), 'max_tokens');
  assert.equal(param(() => resolveParams({ remasking: { schedule: 'loop', eta: 0.1, t_on: 0.2, t_off: 0.5 } }, model, 1, 0)), 'remasking.t_off');
  assert.equal(param(() => resolveParams({}, model, 64, 0)), null);
});
