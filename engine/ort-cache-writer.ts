// Writes one graph's optimised form into the cache (engine/optimized-cache.ts), in a process of
// its own so that the engine that asked keeps serving: ONNX Runtime optimises the graph again
// and saves it in its own format, under a temporary name renamed into place when complete, so
// a start never maps a half-written file; then the folder is trimmed to the graphs last used.
//   node dist/engine/ort-cache-writer.js GRAPH CACHE_FILE LEVEL
import { renameSync } from 'node:fs';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { evictOld, removeQuietly } from './optimized-cache.js';

const LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;

async function main(): Promise<void> {
  const [graphPath, cached, level] = process.argv.slice(2);
  const lvl = LEVELS.find((l) => l === level);
  if (!graphPath || !cached || !lvl) throw new Error('usage: ort-cache-writer GRAPH CACHE_FILE LEVEL');
  const tmp = `${cached}.${process.pid}.tmp`;
  try {
    // The name does not end in .ort, so the format is named (ONNX Runtime goes by the suffix).
    const session = await ort.InferenceSession.create(graphPath, {
      graphOptimizationLevel: lvl,
      optimizedModelFilePath: tmp,
      intraOpNumThreads: 1,
      logSeverityLevel: 3,
      extra: { session: { save_model_format: 'ORT' } },
    });
    await session.release();
    renameSync(tmp, cached);
    evictOld(dirname(cached));
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ort-cache-writer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
