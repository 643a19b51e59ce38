// bench:block runs bd3lm-brown's block graph with a 1032-token window, past the 128 tokens it
// was trained on. That is sound only if the graph has no length of its own: its rotary angles
// come from the `positions` input, so shifting every position by the same amount (far beyond
// 128) leaves the logits as they were, while shifting the block alone changes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModelDir } from '../engine/manifest.js';

const MODEL = resolve(import.meta.dirname, '..', '..', 'models', 'zoo', 'bd3lm-brown');
const m = loadModelDir(MODEL).manifest;
const { n_layers: nL, n_heads: H, head_dim: Dh } = m.architecture;
const session = await ort.InferenceSession.create(join(MODEL, m.graphs.block!.file), { intraOpNumThreads: 1 });

const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);

async function call(tokens: number[], start: number, past: { k: ort.Tensor; v: ort.Tensor; mask: number[] }) {
  const out = await session.run({
    tokens: i64(tokens), attention_mask: i64(tokens.map(() => 1)), positions: i64(tokens.map((_, i) => start + i)),
    past_keys: past.k, past_values: past.v, past_mask: i64(past.mask),
  });
  return { logits: out.logits!.data as Float32Array, k: out.present_keys!, v: out.present_values! };
}

/** Logits of a masked block right after a clean 8-token context, every position + `shift`. */
async function blockLogits(shift: number, blockShift = shift): Promise<Float32Array> {
  const empty = { k: new ort.Tensor('float32', new Float32Array(nL * H * Dh), [1, nL, H, 1, Dh]), mask: [0] };
  const ctx = await call([5, 17, 42, 9, 300, 11, 64, 7], shift, { ...empty, v: empty.k });
  const mask = m.special_tokens.mask!;
  return (await call([mask, 23, mask, mask], 8 + blockShift, { k: ctx.k, v: ctx.v, mask: Array(8).fill(1) })).logits;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((d, x, i) => Math.max(d, Math.abs(x - b[i]!)), 0);

test('the block graph has no length limit: a shift of every position past the trained length keeps the logits', async () => {
  assert.equal(m.max_length, 128, 'this test shifts past the shipped model length of 128');
  const base = await blockLogits(0);
  for (const shift of [120, 1000]) {
    const d = maxDiff(base, await blockLogits(shift));
    assert.ok(d < 1e-5, `shift ${shift}: logits moved by ${d}`);
  }
  // Positions do reach the attention: moving the block away from its context changes them.
  const apart = maxDiff(base, await blockLogits(0, 1000));
  assert.ok(apart > 1e-3, `a block 1000 positions from its context moved the logits only ${apart}`);
});
