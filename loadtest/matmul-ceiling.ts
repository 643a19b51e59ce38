// What ONNX Runtime's MatMul reaches on this machine, measured in the same run as the
// benchmark it is compared with: a one-node MatMul graph (loadtest/fixtures/matmul_graph.py),
// timed through onnxruntime-node with the engine's thread setting at a few shapes; the best
// GFLOP/s is the ceiling that a model's achieved FLOP/s is read against. The int8 ceiling is
// the same measure for the op the int8 variants run (DynamicQuantizeMatMul, constant int8 B,
// activations quantized per call), in GOP/s: one graph per (k, n), since B must be a constant
// for ONNX Runtime to prepack it as it does in a model.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../engine/device-session.js';

const SCRIPT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'loadtest', 'fixtures', 'matmul_graph.py');

export interface MatmulPoint {
  m: number;
  k: number;
  n: number;
  gflops: number;
}

export interface MatmulCeiling {
  /** Best over the shapes, GFLOP/s. */
  gflops: number;
  points: MatmulPoint[];
}

/** A half-precision MatMul (fp32 in and out, cast around it: matmul_graph.py --dtype). */
export type HalfType = 'float16' | 'bfloat16';

/** Writes the graph with Debian's python (which has onnx) and returns its path. */
export function buildMatmulGraph(python = process.env.DLM_PYTHON ?? '/usr/bin/python3', int8?: { k: number; n: number }, half?: HalfType): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dlm-matmul-')), 'matmul.onnx');
  const r = spawnSync(python, [SCRIPT, path, ...(int8 ? ['--int8', String(int8.k), String(int8.n)] : half ? ['--dtype', half] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${SCRIPT} failed: ${r.stderr || r.error?.message}`);
  return path;
}

/**
 * GFLOP/s of [m, k] x [k, n] products (2mkn FLOPs each): each shape runs `bursts` bursts of
 * about `seconds` after one warm-up call, and its best burst counts. A ceiling is a peak: on a
 * shared VM one burst can lose its cores for a moment, and a single long run then reads low
 * (it once read below what the model itself achieved in the same run).
 */
export async function measureMatmulCeiling(shapes: readonly [number, number, number][], opts: { threads?: number; seconds?: number; bursts?: number; int8?: boolean; half?: HalfType } = {}): Promise<MatmulCeiling> {
  const sessionOpts = opts.threads !== undefined ? { threads: opts.threads } : {};
  const fp32 = opts.int8 ? null : await openDeviceSession(buildMatmulGraph(undefined, undefined, opts.half), 'cpu', sessionOpts);
  const points: MatmulPoint[] = [];
  for (const [m, k, n] of shapes) {
    const session = fp32 ?? await openDeviceSession(buildMatmulGraph(undefined, { k, n }), 'cpu', sessionOpts);
    try {
      const fill = (len: number): Float32Array => Float32Array.from({ length: len }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
      const feeds: Record<string, ort.Tensor> = { A: new ort.Tensor('float32', fill(m * k), [m, k]) };
      if (!opts.int8) feeds.B = new ort.Tensor('float32', fill(k * n), [k, n]);
      await session.run(feeds);
      let best = 0;
      for (let b = 0; b < (opts.bursts ?? 5); b++) {
        let calls = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < (opts.seconds ?? 0.5) * 1000) {
          await session.run(feeds);
          calls++;
        }
        const s = (performance.now() - t0) / 1000;
        best = Math.max(best, (2 * m * k * n * calls) / s / 1e9);
      }
      points.push({ m, k, n, gflops: best });
    } finally {
      if (!fp32) await session.release();
    }
  }
  await fp32?.release();
  return { gflops: Math.max(...points.map((p) => p.gflops)), points };
}
