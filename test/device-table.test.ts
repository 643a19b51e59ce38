// The benchmark table built from probe reports: rows per device, speed-ups against the CPU
// measured in the same run, FLOP/s and the copy share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceTable } from '../loadtest/device-table.js';

const batch = (b: number, ms: number, extra: object = {}) => ({ batch: b, length: 128, medianMs: ms, positionsPerSec: (b * 128) / (ms / 1e3), ...extra });

test('one row per device and graph; GPU cells carry their ratio to the CPU of the same run', () => {
  const table = deviceTable(
    [
      { device: 'cuda', model: 'm', results: [{ role: 'denoiser', ok: true, batches: [batch(1, 1, { tflops: 10, peakShare: 0.02, transferShare: 0.4 }), batch(8, 2, { tflops: 40, peakShare: 0.08, transferShare: 0.5 })] }] },
      { device: 'cpu', model: 'm', results: [{ role: 'denoiser', ok: true, batches: [batch(1, 4), batch(8, 30)] }] },
      { device: 'webgpu', model: 'm', results: [{ role: 'denoiser', ok: false, error: 'x', batches: [] }] },
    ],
    'NVIDIA H100',
  );
  const lines = table.trim().split('\n');
  assert.equal(lines.length, 2 + 3);
  assert.match(lines[0]!, /\| batch 1 \| batch 8 \|/);
  assert.match(lines[2]!, /^\| \(cpu\) \| m \| denoiser \| cpu \| 32,000 pos\/s \| 34,133 pos\/s \| - \| - \|$/);
  assert.match(lines[3]!, /^\| NVIDIA H100 \| m \| denoiser \| cuda \| 128,000 pos\/s \(4\.0× cpu\) \| 512,000 pos\/s \(15\.0× cpu\) \| 40\.00 \(8\.0%\) \| 40% \/ 50% \|$/);
  assert.match(lines[4]!, /\| webgpu \| failed \| failed \|/);
});
