// The exported DiT through onnxruntime-node matches PyTorch on the same inputs: several batch
// sizes and lengths, a padded batch whose padded row equals that row run alone, and the fp16
// weight storage (Casts folded at load, compute in fp32).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkParity } from './helpers/parity.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

function makeCases(fp16: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-parity-'));
  const args = ['-m', 'dlm.parity', '--out', dir, ...(fp16 ? ['--fp16-weights'] : [])];
  const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `dlm.parity failed: ${r.stderr}`);
  return dir;
}

async function runCases(fp16: boolean): Promise<Float32Array[]> {
  return checkParity(makeCases(fp16), TOL, fp16 ? 'fp16 weights' : 'fp32');
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

// The PyTorch DiT recovered from the shipped default's fp16 initializers (models/dlm/from_onnx.py,
// what the chat fine-tune starts from) gives the graph's own logits: the renamed MatMul and
// LayerNorm initializers were matched to the right parameters, transposed the right way.
test(`default model recovered from its ONNX initializers matches ONNX Runtime within ${TOL}`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-recover-'));
  const args = ['-m', 'dlm.parity', '--out', dir, '--recover', join(REPO, 'models', 'zoo', 'default')];
  const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `dlm.parity --recover failed: ${r.stderr}`);
  await checkParity(dir, TOL, 'recovered default');
});
