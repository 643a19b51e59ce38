// Runs parity cases of graphs with per-layer K/V (written by models/dlm/parity_bd3lm.py and
// parity_kv.py: each input and PyTorch's outputs as raw little-endian files) through one
// onnxruntime-node session and asserts every output within `tol` at the unpadded query rows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

export interface KvCase {
  name: string;
  inputs: Record<string, { type: 'int64' | 'float32'; dims: number[] }>;
  outputs: Record<string, number[]>;
}

export function readRaw(path: string, type: 'int64' | 'float32'): BigInt64Array | Float32Array {
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return type === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
}

/** Each case's feeds and ORT outputs, after checking the outputs against PyTorch's. */
export async function checkKvCases(session: ort.InferenceSession, dir: string, cases: readonly KvCase[], tol: number):
  Promise<{ feeds: Record<string, ort.Tensor>; out: ort.InferenceSession.OnnxValueMapType }[]> {
  const results = [];
  for (const c of cases) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, spec] of Object.entries(c.inputs)) feeds[name] = new ort.Tensor(spec.type, readRaw(join(dir, `${c.name}.${name}.bin`), spec.type), spec.dims);
    const out = await session.run(feeds);
    const am = feeds.attention_mask!.data as BigInt64Array;
    const [B, Lq] = c.inputs.tokens!.dims as [number, number];
    for (const [name, dims] of Object.entries(c.outputs)) {
      assert.deepEqual(out[name]!.dims, dims, `${c.name}.${name} dims`);
      const got = out[name]!.data as Float32Array;
      const want = readRaw(join(dir, `${c.name}.${name}.bin`), 'float32') as Float32Array;
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        // Which (row, query position) a flat index belongs to: logits [B,Lq,V], presents [B,nL,H,Lq,Dh].
        const b = Math.floor(i / (want.length / B));
        const pos = name === 'logits' ? Math.floor(i / dims[2]!) % Lq : Math.floor(i / dims[4]!) % Lq;
        if (am[b * Lq + pos] === 0n) continue; // padded query positions are never read
        worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      }
      assert.ok(worst <= tol, `${c.name}.${name}: max |ORT - torch| = ${worst}`);
      assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}.${name} carries signal`);
    }
    results.push({ feeds, out });
  }
  return results;
}
