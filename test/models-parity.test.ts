// The exported DiT through onnxruntime-node matches PyTorch on the same inputs: several batch
// sizes and lengths, a padded batch whose padded row equals that row run alone, and the fp16
// weight storage (Casts folded at load, compute in fp32).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

interface Cases { graph: string; cases: { name: string; shape: number[]; logits_shape: number[] }[] }

function makeCases(fp16: boolean): { dir: string; index: Cases } {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-parity-'));
  const args = ['-m', 'dlm.parity', '--out', dir, ...(fp16 ? ['--fp16-weights'] : [])];
  const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `dlm.parity failed: ${r.stderr}`);
  return { dir, index: JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Cases };
}

function i64(path: string): BigInt64Array {
  const b = readFileSync(path);
  return new BigInt64Array(b.buffer, b.byteOffset, b.byteLength / 8);
}
function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function runCases(fp16: boolean): Promise<Float32Array[]> {
  const { dir, index } = makeCases(fp16);
  const session = await ort.InferenceSession.create(index.graph);
  const outs: Float32Array[] = [];
  for (const c of index.cases) {
    const tokens = new ort.Tensor('int64', i64(join(dir, `${c.name}.tokens.bin`)), c.shape);
    const mask = new ort.Tensor('int64', i64(join(dir, `${c.name}.attention_mask.bin`)), c.shape);
    const got = (await session.run({ tokens, attention_mask: mask })).logits!;
    assert.deepEqual(got.dims, c.logits_shape);
    const want = f32(join(dir, `${c.name}.logits.bin`));
    const data = got.data as Float32Array;
    let worst = 0;
    const maskData = mask.data as BigInt64Array;
    const V = c.logits_shape[2]!;
    for (let i = 0; i < want.length; i++) {
      if (maskData[Math.floor(i / V)] === 0n) continue; // padded query rows are never read
      worst = Math.max(worst, Math.abs(data[i]! - want[i]!));
    }
    assert.ok(worst <= TOL, `${c.name} (${fp16 ? 'fp16 weights' : 'fp32'}): max |ORT - torch| = ${worst}`);
    assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}: logits carry signal`);
    outs.push(data);
  }
  await session.release();
  return outs;
}

for (const fp16 of [false, true]) {
  test(`DiT export matches PyTorch within ${TOL} (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    const outs = await runCases(fp16);
    // The padded row (case 3, row 1, first 4 positions) equals the same row alone (case 4).
    const padded = outs[3]!;
    const alone = outs[4]!;
    const V = alone.length / 4;
    for (let p = 0; p < 4; p++) {
      for (let v = 0; v < V; v++) {
        const a = padded[(9 + p) * V + v]!;
        const b = alone[p * V + v]!;
        assert.ok(Math.abs(a - b) <= TOL, `padding leaks into row 1 at position ${p}: ${a} vs ${b}`);
      }
    }
  });
}
