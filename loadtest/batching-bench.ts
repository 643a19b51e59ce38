// Batching on vs off, in one run: the same closed-loop WebSocket workload at each concurrency
// against two servers that differ only in max batch (on: the largest concurrency; off: 1),
// interleaved point by point so that machine noise falls on both. Also the achieved FLOP/s
// (denoiser rows the engine ran x matmul FLOPs per row, over wall time) against ONNX Runtime's
// own MatMul ceiling, measured first in the same run.
//
//   npm run bench:batching -- [--model DIR] [--concurrency 1,4,16,64] [--max-tokens 32]
//     [--steps 8] [--rounds 1] [--threads N] [--out .work/bench-batching]
//
// Each point runs max(8, rounds x concurrency) generations of the same prompt (seeds differ),
// so every row has the same length and the FLOP count is exact for the graph's matmuls.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir } from '../engine/manifest.js';
import { DEFAULT_MODEL_DIR } from '../server/config.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { ditShape, rowFlops } from './flops.js';
import { measureMatmulCeiling } from './matmul-ceiling.js';
import { writeJson, writeText, type ScenarioResult } from './report.js';
import { lineChart } from './svg-chart.js';
import { startTarget, type Target } from './target.js';
import { wsLoad } from './ws-load.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: process.env.DLM_MODEL ?? DEFAULT_MODEL_DIR },
    concurrency: { type: 'string', default: '1,4,16,64' },
    'max-tokens': { type: 'string', default: '32' },
    steps: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '1' },
    threads: { type: 'string' },
    out: { type: 'string', default: '.work/bench-batching' },
  },
  strict: true,
});

const PROMPT = 'The old library on the hill';

interface Point {
  concurrency: number;
  mode: 'on' | 'off';
  result: ScenarioResult;
  /** Denoiser rows (sequence x network call) the engine ran, and its mean batch. */
  rows: number;
  meanBatch: number;
  gflops: number;
}

async function point(t: Target, mode: 'on' | 'off', c: number, o: { maxTokens: number; steps: number; rounds: number; flopsPerRow: number }): Promise<Point> {
  // The batch of every call in this point, as the engine pushes them tick by tick.
  let rows = 0;
  let calls = 0;
  const unfollow = t.engine!.onStats((s) => { calls += s.batchSizes.length; for (const b of s.batchSizes) rows += b; });
  const result = await wsLoad({
    scenario: `batching-${mode}`, base: t.base, concurrency: c, perSocket: 4, seconds: 600, total: Math.max(8, o.rounds * c),
    generate: (n) => ({ prompt: PROMPT, settings: { max_tokens: o.maxTokens, steps: o.steps, ignore_eos: true, seed: n, sampler: 'ddpm' } }),
  });
  unfollow();
  return { concurrency: c, mode, result, rows, meanBatch: rows / Math.max(1, calls), gflops: (rows * o.flopsPerRow) / result.seconds / 1e9 };
}

async function main(): Promise<void> {
  const concurrency = values.concurrency!.split(',').map(Number);
  const maxTokens = Number(values['max-tokens']);
  const steps = Number(values.steps);
  const rounds = Number(values.rounds);
  const threads = values.threads ? Number(values.threads) : undefined;
  const dir = loadModelDir(resolve(values.model!));
  const promptLen = (await TextTokenizer.fromFile(dir.tokenizerPath).encode(PROMPT)).length;
  const L = promptLen + maxTokens;
  if (L > dir.manifest.max_length) throw new Error(`prompt + --max-tokens = ${L} exceeds the model's ${dir.manifest.max_length}`);
  const flopsPerRow = rowFlops(ditShape(dir.manifest), L);

  const M = Math.max(...concurrency) * L;
  const ceiling = await measureMatmulCeiling([[1024, 1024, 1024], [M, dir.manifest.architecture.d_model, 4 * dir.manifest.architecture.d_model]], { threads });
  console.log(`ORT MatMul ceiling: ${ceiling.gflops.toFixed(1)} GFLOP/s (${ceiling.points.map((p) => `${p.m}x${p.k}x${p.n}: ${p.gflops.toFixed(1)}`).join(', ')})`);
  console.log(`model ${dir.manifest.name}: rows of ${L} positions (${promptLen} prompt + ${maxTokens}), ${(flopsPerRow / 1e9).toFixed(3)} GFLOP per row; ${steps} steps, ddpm`);

  const on = await startTarget({ modelDir: dir.dir, maxBatch: Math.max(...concurrency), maxQueue: 1024, threads });
  const off = await startTarget({ modelDir: dir.dir, maxBatch: 1, maxQueue: 1024, threads });
  const points: Point[] = [];
  try {
    const o = { maxTokens, steps, rounds, flopsPerRow };
    await point(on, 'on', 1, { ...o, rounds: 1 }); // warm-up both engines
    await point(off, 'off', 1, { ...o, rounds: 1 });
    console.log('conc   on tok/s  off tok/s  on/off   on p50 ms  off p50 ms   first block p50 on/off ms   mean batch   on GFLOP/s (of ceiling)   off GFLOP/s');
    for (const [i, c] of concurrency.entries()) {
      // Alternate which goes first, so neither always runs on a warmer or quieter machine.
      const pair = i % 2 === 0 ? [await point(on, 'on', c, o), await point(off, 'off', c, o)] : [await point(off, 'off', c, o), await point(on, 'on', c, o)].reverse();
      const [a, b] = pair as [Point, Point];
      points.push(a, b);
      const pct = (g: number): string => `${((100 * g) / ceiling.gflops).toFixed(0)}%`;
      console.log(
        `${String(c).padStart(4)} ${a.result.tokensPerSecond.toFixed(1).padStart(10)} ${b.result.tokensPerSecond.toFixed(1).padStart(10)} ${(a.result.tokensPerSecond / b.result.tokensPerSecond).toFixed(2).padStart(7)}x`
        + ` ${a.result.latencyMs.p50.toFixed(0).padStart(11)} ${b.result.latencyMs.p50.toFixed(0).padStart(11)}`
        + ` ${`${a.result.firstBlockMs.p50.toFixed(0)}/${b.result.firstBlockMs.p50.toFixed(0)}`.padStart(27)}`
        + ` ${a.meanBatch.toFixed(1).padStart(12)} ${`${a.gflops.toFixed(1)} (${pct(a.gflops)})`.padStart(25)} ${`${b.gflops.toFixed(1)} (${pct(b.gflops)})`.padStart(13)}`,
      );
    }
  } finally {
    await on.close();
    await off.close();
  }
  const out = resolve(values.out!);
  writeJson(join(out, 'batching.json'), {
    config: { model: dir.manifest.name, rowPositions: L, flopsPerRow, maxTokens, steps, rounds, concurrency, threads: threads ?? null, date: new Date().toISOString() },
    ceiling,
    points,
  });
  writeText(join(out, 'batching.svg'), lineChart({
    title: `${dir.manifest.name}: throughput, batching on vs off`,
    xLabel: 'concurrent generations',
    yLabel: 'tokens/s',
    series: (['on', 'off'] as const).map((mode) => ({
      name: `batching ${mode}`,
      points: points.filter((p) => p.mode === mode).map((p) => [p.concurrency, p.result.tokensPerSecond] as const),
    })),
  }));
  console.log(`wrote ${join(out, 'batching.json')} and ${join(out, 'batching.svg')}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
