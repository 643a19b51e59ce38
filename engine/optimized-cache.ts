// ONNX Runtime's optimised graph, kept between starts (--ort-cache, by default in the user's
// cache folder; CPU only: the other providers' optimised graphs are their own).
// Graph optimisation (constant folding of fp16 weights into fp32, fusions, layout changes) is
// most of a CPU session's creation. ONNX Runtime can write the optimised graph out in its own
// format (flatbuffers) and map it next time with optimisation off: no protobuf parse, no
// passes, the weights read in place from the page cache (docs/benchmarks.md#cold-start).
// A start that finds no cache opens the session as it would without one and writes the cache
// a little later from a separate, low-priority process (engine/ort-cache-writer.ts), so that
// the first start pays nothing on its way to ready and its first answer. The file is tied to what produced it, so its
// name carries the source graph's identity (path, size, mtime), the ONNX Runtime version and
// this CPU: a changed model, an upgraded runtime or another machine's cache is never read.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { cpus, setPriority } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { childEnv } from './child-env.js';

/** The cache file a graph's optimised form is kept in. */
export function optimizedPath(graphPath: string, cacheDir: string, level: string): string {
  const st = statSync(graphPath);
  const key = createHash('sha256')
    .update(JSON.stringify([resolve(graphPath), st.size, st.mtimeMs, ort.env.versions.common, process.arch, cpus()[0]?.model ?? '', level]))
    .digest('hex')
    .slice(0, 16);
  return join(cacheDir, `${basename(graphPath, '.onnx')}-${key}.ort`);
}

/**
 * Session config entries (onnxruntime-node prefixes them with `session.`) that map a cached
 * ORT-format graph and use its weights where they lie instead of copying them.
 */
export const MAPPED_ORT_MODEL: Readonly<Record<string, string>> = {
  load_model_format: 'ORT',
  use_memory_mapped_ort_model: '1',
  use_ort_model_bytes_directly: '1',
  use_ort_model_bytes_for_initializers: '1',
};

/** What a cache miss starts after the session is open; tests wait on it. */
export const pendingWrites = new Set<Promise<void>>();

const WRITER = fileURLToPath(new URL('./ort-cache-writer.js', import.meta.url));

/**
 * A CPU session from the cached optimised graph when there is one, else from the graph itself
 * (and the cache is written in the background for next time). A cache that cannot be written
 * or read is skipped: it never costs a start more than the optimisation it does anyway.
 */
export async function openCachedCpuSession(graphPath: string, options: ort.InferenceSession.SessionOptions, cacheDir: string): Promise<ort.InferenceSession> {
  const level = options.graphOptimizationLevel ?? 'all';
  const cached = optimizedPath(graphPath, cacheDir, level);
  if (existsSync(cached)) {
    try {
      const session = await ort.InferenceSession.create(cached, { ...options, graphOptimizationLevel: 'disabled', extra: { session: MAPPED_ORT_MODEL } });
      markUsed(cached);
      return session;
    } catch {
      // Unreadable or corrupt: optimise afresh (and replace it where the folder allows).
      removeQuietly(cached);
    }
  }
  const session = await ort.InferenceSession.create(graphPath, options);
  writeInBackground(graphPath, cached, level);
  return session;
}

/**
 * How long after the session opens the writer starts: past the start itself and its first
 * request (a process's start and the optimisation it repeats would compete with them).
 */
export const WRITE_DELAY_MS = 2000;

/**
 * Writes the cache from a child process at the lowest priority: the optimisation it repeats
 * takes a core for about as long as a start's session creation, and serving comes first.
 */
function writeInBackground(graphPath: string, cached: string, level: string): void {
  try {
    mkdirSync(dirname(cached), { recursive: true });
  } catch {
    return; // read-only or not a folder: serve without the cache
  }
  const done = new Promise<void>((res) => {
    setTimeout(() => {
      // Its own process group: a Ctrl-C to the server's group does not cut a write short.
      const child = spawn(process.execPath, [WRITER, graphPath, cached, level], { stdio: 'ignore', detached: true, env: childEnv() });
      try {
        if (child.pid !== undefined) setPriority(child.pid, 19);
      } catch {
        // Not permitted here: it runs at normal priority.
      }
      child.once('error', () => res());
      child.once('exit', () => res());
    }, WRITE_DELAY_MS);
  }).finally(() => pendingWrites.delete(done));
  pendingWrites.add(done);
}

/** Cache files kept per folder (the default model's is 63 MB): the most recently used stay. */
export const MAX_CACHED_GRAPHS = 8;
/** A writer's temporary file this old was left by one that was killed. */
const STALE_TMP_MS = 60 * 60 * 1000;

/** A read bumps the file's time, so that eviction goes by use (reads do not move mtime). */
function markUsed(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // A read-only cache is read as it is.
  }
}

/** Keeps the folder bounded: the newest MAX_CACHED_GRAPHS graphs, no stale temporary files. */
export function evictOld(cacheDir: string, keep = MAX_CACHED_GRAPHS): void {
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return;
  }
  const now = Date.now();
  const graphs: Array<{ path: string; mtime: number }> = [];
  for (const name of names) {
    const path = join(cacheDir, name);
    let mtime: number;
    try {
      mtime = statSync(path).mtimeMs;
    } catch {
      continue;
    }
    if (name.endsWith('.ort')) graphs.push({ path, mtime });
    else if (name.endsWith('.tmp') && now - mtime > STALE_TMP_MS) removeQuietly(path);
  }
  graphs.sort((a, b) => b.mtime - a.mtime);
  for (const g of graphs.slice(keep)) removeQuietly(g.path);
}

export function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // Not ours to remove (or under something that is not a folder): leave it.
  }
}
