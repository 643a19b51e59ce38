// The exported two-stream AS-ARM through onnxruntime-node matches PyTorch on the same inputs
// (models/dlm/asarm_parity.py writes a random-weight model and its cases): several batch sizes
// and lengths, orders with a shared-rank context, a padded row that equals itself run alone,
// and fp16 weight storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

interface Cases { graph: string; cases: { name: string; shape: number[]; logits_shape: number[] }[] }

function read(path: string): Buffer {
  return readFileSync(path);
}
function i64(path: string): BigInt64Array {
  const b = read(path);
  return new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
function f32(path: string): Float32Array {
  const b = read(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function check(fp16: boolean, xlnet = false): Promise<Float32Array[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-asarm-parity-'));
  // DLM_ASARM_PARITY_RUN=<dlm.asarm_train output> checks a trained run's weights instead.
  const run = process.env.DLM_ASARM_PARITY_RUN;
  const args = ['-m', 'dlm.asarm_parity', '--out', dir, ...(fp16 ? ['--fp16-weights'] : []), ...(run && !xlnet ? ['--run', resolve(run)] : []), ...(xlnet ? ['--xlnet'] : [])];
  const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `dlm.asarm_parity failed: ${r.stderr}`);
  const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Cases;
  const session = await ort.InferenceSession.create(index.graph);
  const outs: Float32Array[] = [];
  for (const c of index.cases) {
    const feed = (n: string) => new ort.Tensor('int64', i64(join(dir, `${c.name}.${n}.bin`)), c.shape);
    const mask = feed('attention_mask');
    const got = (await session.run({ tokens: feed('tokens'), ranks: feed('ranks'), attention_mask: mask })).logits!;
    assert.deepEqual(got.dims, c.logits_shape);
    const want = f32(join(dir, `${c.name}.logits.bin`));
    const data = got.data as Float32Array;
    const V = c.logits_shape[2]!;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      if ((mask.data as BigInt64Array)[Math.floor(i / V)] === 0n) continue; // padded queries are never read
      worst = Math.max(worst, Math.abs(data[i]! - want[i]!));
    }
    assert.ok(worst <= TOL, `${c.name}: max |ORT - torch| = ${worst} > ${TOL}`);
    assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}: logits carry signal`);
    outs.push(data);
  }
  await session.release();
  return outs;
}

for (const [fp16, xlnet] of [[false, false], [true, false], [false, true]] as const) {
  test(`${xlnet ? 'XLNet (dlm.asarm_xlnet)' : 'AS-ARM'} export matches PyTorch within ${TOL} (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    const outs = await check(fp16, xlnet);
    // Case 3 row 1 has 4 real positions in a batch of length 9; case 4 is that row alone.
    const padded = outs[3]!;
    const alone = outs[4]!;
    const V = alone.length / 4;
    for (let i = 0; i < 4 * V; i++) {
      assert.ok(Math.abs(padded[9 * V + i]! - alone[i]!) <= TOL, `padding leaks into row 1 at ${Math.floor(i / V)}`);
    }
  });
}
