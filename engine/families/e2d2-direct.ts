// Runs sequences of a family in-process through the real scheduler and ONNX Runtime sessions,
// with family options the server never sets (E2D2's recompute baseline). For tests and
// benchmarks that compare two ways of decoding the same model in one process.
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../device-session.js';
import { loadModelDir, type ModelDir, type Precision } from '../manifest.js';
import { openablePaths } from '../derived-graph.js';
import { pickPrecision } from '../precision.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Scheduler, type Runner } from '../scheduler.js';
import { sessionRunner } from '../session-runner.js';
import type { Sequence } from '../sequence.js';
import type { Family } from './registry.js';

export interface DirectResult {
  tokens: number[];
  usage: Usage;
  finishReason: FinishReason | null;
  /** Commits as they streamed (one array per commit). */
  chunks: number[][];
}

export class DirectRunner {
  private constructor(readonly dir: ModelDir, private readonly sessions: Map<string, ort.InferenceSession>) {}

  static async open(modelDir: string, threads?: number, precision: Precision = 'fp32'): Promise<DirectRunner> {
    const dir = loadModelDir(modelDir);
    const sessions = new Map<string, ort.InferenceSession>();
    for (const [role, path] of Object.entries(await openablePaths(pickPrecision(dir, precision, 'cpu')))) {
      sessions.set(role, await openDeviceSession(path, 'cpu', threads !== undefined ? { threads } : {}));
    }
    return new DirectRunner(dir, sessions);
  }

  /** The scheduler's view of the sessions (for a caller that wraps it: timing, comparison). */
  get runner(): Runner {
    return sessionRunner(this.dir.manifest, this.sessions);
  }

  /**
   * Runs the prompts together (batched by the scheduler up to maxBatch) to completion;
   * onCommit sees every commit as it streams (time to first block, for benchmarks); `runner`
   * replaces this.runner (a wrapper of it that times or compares the calls).
   */
  async run(family: Family, prompts: number[][], params: GenerationParams | GenerationParams[], maxBatch = 16,
    onCommit?: (index: number, tokens: number[]) => void, runner: Runner = this.runner): Promise<DirectResult[]> {
    const m = this.dir.manifest;
    const results: DirectResult[] = prompts.map(() => ({ tokens: [], usage: { promptTokens: 0, completionTokens: 0, nfe: 0, cachedTokens: 0 }, finishReason: null, chunks: [] }));
    const seqs: Sequence[] = prompts.map((p, i) => {
      const ps = Array.isArray(params) ? params[i]! : params;
      family.validate(ps, m);
      return family.create(i, p, ps, {
        manifest: m,
        sink: { commit: (t) => { results[i]!.tokens.push(...t); results[i]!.chunks.push(t); onCommit?.(i, t); }, step: () => {} },
      });
    });
    const failures: unknown[] = [];
    let left = seqs.length;
    let finished!: () => void;
    const done = new Promise<void>((r) => { finished = r; });
    const scheduler = new Scheduler(runner, {
      finished: (s) => { results[s.id]!.usage = s.usage(); results[s.id]!.finishReason = s.finishReason; if (--left === 0) finished(); },
      failed: (_s, err) => { failures.push(err); },
      call: () => {},
    }, maxBatch, seqs.length);
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
