// A derived int8 variant (models/dlm/quantize.py --weights derive) computes its int8 weights
// from the fp32 file's at session creation. ONNX Runtime folds them, but keeps what it folded
// from: the default's engine held 418 MiB against 190 MiB at fp32 (npm run bench:int8), 162 MiB
// once folded. So the engine folds once, with ONNX Runtime's own basic optimizer
// (constant folding only: hardware-independent, unlike the 'all' level), into a cache file and
// opens that: the same weights bit for bit, an embedded variant's memory and start time.
import { createHash } from 'node:crypto';
import { mkdirSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { PrecisionPick } from './precision.js';

export function graphCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DLM_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'dlm-serve');
}

/** The folded file for a derived variant: written on first use, reused while nothing changed. */
export async function foldedGraph(variantPath: string, sourceSha256: string, cacheDir = graphCacheDir()): Promise<string> {
  // The key covers everything the folded bytes depend on: the variant, its source, ORT's folder.
  const key = createHash('sha256').update(readFileSync(variantPath)).update(sourceSha256).update(ort.env.versions.common).digest('hex').slice(0, 32);
  const path = join(cacheDir, `int8-${key}.onnx`);
  if (existsSync(path)) return path;
  try {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    const s = await ort.InferenceSession.create(variantPath, { graphOptimizationLevel: 'basic', optimizedModelFilePath: tmp });
    await s.release();
    renameSync(tmp, path); // atomic: two engines starting at once never read half a file
    return path;
  } catch {
    // No writable cache: the variant itself computes the same weights, at more memory.
    return variantPath;
  }
}

/** The files to open for a pick: derived variants replaced by their folded cache files. */
export async function openablePaths(pick: PrecisionPick): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [role, path] of Object.entries(pick.graphPaths)) {
    const sha = pick.derivedFrom[role];
    out[role] = sha === undefined ? path : await foldedGraph(path, sha);
  }
  return out;
}
