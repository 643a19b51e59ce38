// ONNX Runtime's optimised graph, kept between starts (--ort-cache, opt-in). Graph optimisation
// (constant folding of fp16 weights into fp32, fusions, layout changes) is part of a CPU
// session's creation; ONNX Runtime can write the optimised graph out (optimizedModelFilePath)
// and load it next time with optimisation off. On the default model that does not pay (the
// fp32 graph is twice the bytes to read; docs/deploying.md#cold-start), on a graph with more to
// fuse it may. The file is tied to what produced it, so its name carries
// the source graph's identity (path, size, mtime), the ONNX Runtime version and this CPU: a
// changed model, an upgraded runtime or another machine's cache is never read.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';

/** The cache file a graph's optimised form is kept in. */
export function optimizedPath(graphPath: string, cacheDir: string, level: string): string {
  const st = statSync(graphPath);
  const key = createHash('sha256')
    .update(JSON.stringify([resolve(graphPath), st.size, st.mtimeMs, ort.env.versions.common, process.arch, cpus()[0]?.model ?? '', level]))
    .digest('hex')
    .slice(0, 16);
  // The ORT format (flatbuffers) loads without a protobuf parse, and in place (below).
  return join(cacheDir, `${basename(graphPath, '.onnx')}-${key}.ort`);
}

const keepAlive = new WeakMap<ort.InferenceSession, Buffer>();

/**
 * A CPU session from the cached optimised graph when there is one, else from the graph itself
 * (writing the cache for next time). A cache that cannot be written or read is skipped: it
 * only ever costs the optimisation that a start without it does anyway.
 */
export async function openCachedCpuSession(graphPath: string, options: ort.InferenceSession.SessionOptions, cacheDir: string): Promise<ort.InferenceSession> {
  const level = options.graphOptimizationLevel ?? 'all';
  const cached = optimizedPath(graphPath, cacheDir, level);
  try {
    const bytes = readFileSync(cached);
    // ONNX Runtime then reads the graph and its weights where they lie instead of copying them
    // (faster than the same file by path, in isolated timings); the bytes must live as long as
    // the session.
    const session = await ort.InferenceSession.create(bytes, {
      ...options,
      graphOptimizationLevel: 'disabled',
      extra: { session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } },
    });
    keepAlive.set(session, bytes);
    return session;
  } catch {
    // Absent, unreadable or corrupt: optimise afresh (and replace it where the folder allows).
    removeQuietly(cached);
  }
  let tmp: string | null = null;
  try {
    mkdirSync(cacheDir, { recursive: true });
    tmp = `${cached}.${process.pid}.tmp`;
  } catch {
    // Read-only or absent: serve without the cache.
  }
  if (tmp === null) return ort.InferenceSession.create(graphPath, options);
  // ORT warns that an 'all'-level graph may hold this machine's layouts: the key names the CPU.
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(graphPath, { ...options, optimizedModelFilePath: tmp, logSeverityLevel: 3 });
  } catch {
    // The folder exists but takes no file: a real graph error shows again, uncached, below.
    removeQuietly(tmp);
    return ort.InferenceSession.create(graphPath, options);
  }
  try {
    // Atomic, so a concurrent start never reads a half-written graph.
    renameSync(tmp, cached);
  } catch {
    removeQuietly(tmp);
  }
  return session;
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // Not ours to remove (or under something that is not a folder): leave it.
  }
}
