// Runs parity cases written by models/dlm/parity.py (inputs + PyTorch logits) through
// onnxruntime-node and returns the worst absolute difference over real (unpadded) positions.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';

interface Cases { graph: string; cases: { name: string; shape: number[]; logits_shape: number[] }[] }

function i64(path: string): BigInt64Array {
  const b = readFileSync(path);
  return new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export async function checkParity(dir: string, tol: number, label: string): Promise<Float32Array[]> {
  const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Cases;
  const session = await ort.InferenceSession.create(index.graph);
  const outs: Float32Array[] = [];
  for (const c of index.cases) {
    const tokens = new ort.Tensor('int64', i64(join(dir, `${c.name}.tokens.bin`)), c.shape);
    const mask = new ort.Tensor('int64', i64(join(dir, `${c.name}.attention_mask.bin`)), c.shape);
    const got = (await session.run({ tokens, attention_mask: mask })).logits!;
    assert.deepEqual(got.dims, c.logits_shape);
    const want = f32(join(dir, `${c.name}.logits.bin`));
    const data = got.data as Float32Array;
    const maskData = mask.data as BigInt64Array;
    const V = c.logits_shape[2]!;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      if (maskData[Math.floor(i / V)] === 0n) continue; // padded query rows are never read
      worst = Math.max(worst, Math.abs(data[i]! - want[i]!));
    }
    assert.ok(worst <= tol, `${label} ${c.name}: max |ORT - torch| = ${worst} > ${tol}`);
    assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}: logits carry signal`);
    outs.push(data);
  }
  await session.release();
  return outs;
}
