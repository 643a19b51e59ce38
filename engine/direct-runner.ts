// Runs sequences of any family in-process through the real scheduler and ONNX Runtime sessions,
// with family options the server never sets (the recompute baselines). For tests and benchmarks
// that compare two ways of decoding the same model in one process. Like EngineCore it keeps one
// block cache per model (families with a cache layout); a run may bring a fresh one instead.
import * as ort from 'onnxruntime-node';
import { CacheManager } from './cache-manager.js';
import { openDeviceSession } from './device-session.js';
import type { Family } from './families/family.js';
import { openablePaths } from './derived-graph.js';
import { loadModelDir, REQUIRED_GRAPHS, type ModelDir, type Precision } from './manifest.js';
import { pickPrecision } from './precision.js';
import type { FinishReason, GenerationParams, Usage } from './protocol.js';
import { type Runner, Scheduler } from './scheduler.js';
import { sessionRunner } from './session-runner.js';
import type { Sequence } from './sequence.js';

export interface DirectResult {
  tokens: number[];
  usage: Usage;
  finishReason: FinishReason | null;
  /** Commits as they streamed (one array per commit). */
  chunks: number[][];
}

export interface DirectRunOptions {
  /** Rows decoded together at most (default 16). */
  maxBatch?: number;
  /** Sees every commit as it streams (time to first block, for benchmarks). */
  onCommit?: (index: number, tokens: number[]) => void;
  /** The block cache to run against (default: the runner's own, kept across runs). */
  cache?: CacheManager | null;
  /** Replaces this.runner: a wrapper of it that times or compares the calls. */
  runner?: Runner;
}

export class DirectRunner {
  private readonly caches = new Map<Family, CacheManager>();

  private constructor(readonly dir: ModelDir, private readonly sessions: Map<string, ort.InferenceSession>) {}

  static async open(modelDir: string, threads?: number, precision: Precision = 'fp32'): Promise<DirectRunner> {
    const dir = loadModelDir(modelDir);
    const sessions = new Map<string, ort.InferenceSession>();
    const paths = await openablePaths(pickPrecision(dir, precision, 'cpu'));
    for (const role of REQUIRED_GRAPHS[dir.manifest.family]) {
      sessions.set(role, await openDeviceSession(paths[role]!, 'cpu', threads !== undefined ? { threads } : {}));
    }
    return new DirectRunner(dir, sessions);
  }

  /** The scheduler's view of the sessions (for a caller that wraps it: timing, comparison). */
  get runner(): Runner {
    return sessionRunner(this.dir.manifest, this.sessions);
  }

  /** An empty block cache for this model and family (null when the family caches nothing). */
  newCache(family: Family, budgetBytes?: number): CacheManager | null {
    const layout = family.cacheLayout?.(this.dir.manifest);
    return layout ? new CacheManager(layout, budgetBytes) : null;
  }

  /** The runner's own cache for a family, made on first use and kept across runs. */
  cacheOf(family: Family): CacheManager | null {
    let c = this.caches.get(family) ?? null;
    if (!c) {
      c = this.newCache(family);
      if (c) this.caches.set(family, c);
    }
    return c;
  }

  /** Runs the prompts together (batched by the scheduler up to maxBatch) to completion. */
  async run(family: Family, prompts: number[][], params: GenerationParams | GenerationParams[], opts: DirectRunOptions = {}): Promise<DirectResult[]> {
    const m = this.dir.manifest;
    const cache = opts.cache !== undefined ? opts.cache : this.cacheOf(family);
    const results: DirectResult[] = prompts.map(() => ({ tokens: [], usage: { promptTokens: 0, completionTokens: 0, nfe: 0, cachedTokens: 0 }, finishReason: null, chunks: [] }));
    const seqs: Sequence[] = prompts.map((p, i) => {
      const ps = Array.isArray(params) ? params[i]! : params;
      family.validate(ps, m);
      return family.create(i, p, ps, {
        manifest: m,
        cache,
        sink: { commit: (t) => { results[i]!.tokens.push(...t); results[i]!.chunks.push(t); opts.onCommit?.(i, t); }, step: () => {} },
      });
    });
    const failures: unknown[] = [];
    let left = seqs.length;
    let finished!: () => void;
    const done = new Promise<void>((r) => { finished = r; });
    const scheduler = new Scheduler(opts.runner ?? this.runner, {
      finished: (s) => { results[s.id]!.usage = s.usage(); results[s.id]!.finishReason = s.finishReason; if (--left === 0) finished(); },
      failed: (_s, err) => { failures.push(err); },
      call: () => {},
    }, opts.maxBatch ?? 16, seqs.length);
    for (const s of seqs) scheduler.submit(s);
    const loop = scheduler.loop();
    await done;
    scheduler.close();
    await loop;
    if (failures.length > 0) throw failures[0];
    return results;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
  }
}
