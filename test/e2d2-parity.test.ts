// The exported E2D2 graphs through onnxruntime-node match PyTorch: the encoder (past padded
// through past_mask, a short row padded through attention_mask, two blocks in one call) and the
// decoder (context padded through context_mask), with fp32 and fp16 weight storage. And the
// engine's path - the encoder once per block appending its own outputs to the caches, the
// decoder per block against them - reproduces PyTorch's full forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkE2d2Cases, e2d2ChainWorst } from './helpers/e2d2-parity.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

// One Python process writes both variants (loading torch dominates the time).
let made: string | null = null;
function makeCases(fp16: boolean): string {
  if (!made) {
    made = mkdtempSync(join(tmpdir(), 'dlm-e2d2-parity-'));
    const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_parity', '--out', made, '--both'], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, `dlm.e2d2_parity failed: ${r.stderr}`);
  }
  return join(made, fp16 ? 'fp16' : 'fp32');
}

for (const fp16 of [false, true]) {
  test(`E2D2 encoder and decoder graphs match PyTorch within ${TOL} (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    await checkE2d2Cases(makeCases(fp16), TOL);
  });
}

test('E2D2 through the graphs block by block (cached encoder state) equals the full PyTorch forward', async () => {
  const worst = await e2d2ChainWorst(makeCases(false));
  assert.ok(worst <= TOL, `block-by-block logits differ from the full forward by ${worst}`);
});
