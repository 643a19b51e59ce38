// The exported BD3-LM `block` graph through onnxruntime-node matches PyTorch (mixed past lengths
// padded through past_mask, a block padded through attention_mask, fp16 weight storage), and
// the engine's path - one call per block, appending the graph's own present K/V - reproduces
// PyTorch's full block-causal forward over the whole sequence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { checkKvCases, readRaw, type KvCase } from './helpers/kv-cases.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

interface Index {
  graph: string;
  cases: KvCase[];
  chain: { length: number; block_size: number; vocab: number; n_layers: number; n_heads: number; head_dim: number };
}

const read = readRaw;

function makeCases(fp16: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-block-parity-'));
  const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.parity_bd3lm', '--out', dir, ...(fp16 ? ['--fp16-weights'] : [])],
    { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `dlm.parity_bd3lm failed: ${r.stderr}`);
  return dir;
}

for (const fp16 of [false, true]) {
  test(`BD3-LM block graph matches PyTorch within ${TOL} (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    const dir = makeCases(fp16);
    const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Index;
    const session = await ort.InferenceSession.create(index.graph);
    await checkKvCases(session, dir, index.cases, TOL);

    // The engine's path: block by block, appending present K/V, equals the full forward.
    const ch = index.chain;
    const tokens = read(join(dir, 'chain.tokens.bin'), 'int64') as BigInt64Array;
    const full = read(join(dir, 'chain.logits.bin'), 'float32') as Float32Array;
    const { n_layers: nL, n_heads: H, head_dim: Dh, block_size: bs, vocab: V } = ch;
    let P = 0;
    let keys = new Float32Array(0);
    let values = new Float32Array(0);
    let worst = 0;
    for (let s = 0; s < ch.length; s += bs) {
      // P = 0 on the first block: one masked dummy slot instead of a zero-sized axis.
      const Pf = Math.max(P, 1);
      const pk = new Float32Array(nL * H * Pf * Dh);
      const pv = new Float32Array(nL * H * Pf * Dh);
      for (let lh = 0; lh < nL * H; lh++) {
        pk.set(keys.subarray(lh * P * Dh, (lh + 1) * P * Dh), lh * Pf * Dh);
        pv.set(values.subarray(lh * P * Dh, (lh + 1) * P * Dh), lh * Pf * Dh);
      }
      const pm = new BigInt64Array(Pf).fill(P > 0 ? 1n : 0n);
      const out = await session.run({
        tokens: new ort.Tensor('int64', tokens.slice(s, s + bs), [1, bs]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(bs).fill(1n), [1, bs]),
        positions: new ort.Tensor('int64', BigInt64Array.from({ length: bs }, (_, i) => BigInt(s + i)), [1, bs]),
        past_keys: new ort.Tensor('float32', pk, [1, nL, H, Pf, Dh]),
        past_values: new ort.Tensor('float32', pv, [1, nL, H, Pf, Dh]),
        past_mask: new ort.Tensor('int64', pm, [1, Pf]),
      });
      const logits = out.logits!.data as Float32Array;
      for (let i = 0; i < bs * V; i++) worst = Math.max(worst, Math.abs(logits[i]! - full[s * V + i]!));
      const k = out.present_keys!.data as Float32Array;
      const v = out.present_values!.data as Float32Array;
      const nk = new Float32Array(nL * H * (P + bs) * Dh);
      const nv = new Float32Array(nL * H * (P + bs) * Dh);
      for (let lh = 0; lh < nL * H; lh++) {
        nk.set(keys.subarray(lh * P * Dh, (lh + 1) * P * Dh), lh * (P + bs) * Dh);
        nk.set(k.subarray(lh * bs * Dh, (lh + 1) * bs * Dh), (lh * (P + bs) + P) * Dh);
        nv.set(values.subarray(lh * P * Dh, (lh + 1) * P * Dh), lh * (P + bs) * Dh);
        nv.set(v.subarray(lh * bs * Dh, (lh + 1) * bs * Dh), (lh * (P + bs) + P) * Dh);
      }
      keys = nk;
      values = nv;
      P += bs;
    }
    assert.ok(worst <= TOL, `cached block-by-block vs full block-causal forward: ${worst}`);
    await session.release();
  });
}
