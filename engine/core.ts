// The engine in-process: model directory -> sessions -> scheduler. engine/main.ts runs it in
// the engine's own process behind IPC; benchmarks may run it directly.
import * as ort from 'onnxruntime-node';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, type EngineOptions } from './api.js';
import { CacheManager } from './cache-manager.js';
import { openDeviceSession } from './device-session.js';
import { markStartup } from './startup-trace.js';
import { EngineRequestError } from './errors.js';
import { EntropyStop } from './entropy-stop.js';
import { MAX_SPECULATIVE_K } from './families/asarm-family.js';
import { BD3LM_ENTROPY, BLOCKWISE_CONTEXTS, familyOf } from './families/registry.js';
import { checkWeightsFrom, loadModelDir, REQUIRED_GRAPHS, type Manifest, type ModelDir, type Precision } from './manifest.js';
import { openablePaths } from './derived-graph.js';
import { pickPrecision } from './precision.js';
import type { DoneMsg, ErrorMsg, GenerationParams, ModelInfo, StatsMsg, StepMsg } from './protocol.js';
import { Scheduler, type TickStats } from './scheduler.js';
import { sessionRunner } from './session-runner.js';
import type { Sequence } from './sequence.js';
import { MAX_STEPS } from './validate.js';

export interface CoreEvents {
  commit(id: number, tokens: number[]): void;
  step(msg: StepMsg): void;
  error(msg: ErrorMsg): void;
  done(msg: DoneMsg): void;
  /** After every tick, with that tick's calls (and once when the engine runs out of work). */
  stats?(msg: StatsMsg): void;
}

export { EngineRequestError };

export function modelInfo(m: Manifest, device: string, precision = 'fp32'): ModelInfo {
  const d = m.defaults;
  const sampler = typeof d.sampler === 'string' && m.samplers.includes(d.sampler) ? d.sampler : m.samplers[0]!;
  const blockwise = familyOf(m)?.blockwise === true;
  const minEntropy = d.min_entropy ?? (blockwise ? BD3LM_ENTROPY.minEntropy : 0);
  return {
    name: m.name,
    family: m.family,
    vocabSize: m.vocab_size,
    maxLength: m.max_length,
    maskId: m.special_tokens.mask,
    eosId: m.special_tokens.eos,
    samplers: m.samplers,
    defaults: {
      maxTokens: d.max_tokens ?? 64,
      sampler,
      steps: d.steps ?? 32,
      temperature: d.temperature ?? 1,
      topP: d.top_p ?? 1,
      topK: d.top_k ?? 0,
      ignoreEos: false,
      ...(d.block_size !== undefined ? { blockSize: d.block_size } : {}),
      ...(minEntropy > 0 ? { minEntropy } : {}),
      entropyWindow: d.entropy_window ?? BD3LM_ENTROPY.entropyWindow,
      ...(d.kv_cache !== undefined && d.kv_cache !== 'off' ? { kvCache: d.kv_cache } : {}),
      ...(d.cache_refresh !== undefined ? { cacheRefresh: d.cache_refresh } : {}),
      ...(d.cache_block !== undefined ? { cacheBlock: d.cache_block } : {}),
    },
    limits: {
      maxSteps: MAX_STEPS,
      blockSizes: m.block?.sizes ?? null,
      maxSpeculativeK: m.family === 'asarm' ? MAX_SPECULATIVE_K : null,
      maxTokens: blockwise ? BLOCKWISE_CONTEXTS * m.max_length : null,
    },
    device,
    precision,
    manifest: m,
  };
}

/** The sequence's entropy rule, or null when it is off. */
function entropyStop(params: GenerationParams): EntropyStop | null {
  const min = params.minEntropy;
  if (min === undefined || min === 0) return null;
  return new EntropyStop(min, params.entropyWindow ?? BD3LM_ENTROPY.entropyWindow);
}

export class EngineCore {
  readonly model: ModelInfo;
  private readonly scheduler: Scheduler;
  private readonly live = new Map<number, Sequence>();
  /** Sequences whose entropy rule tripped on their last commit: ended at the end of the tick. */
  private readonly lowEntropy = new Set<number>();
  private loopDone: Promise<void>;

  private constructor(
    private readonly dir: ModelDir,
    private readonly sessions: Map<string, ort.InferenceSession>,
    opts: EngineOptions,
    private readonly events: CoreEvents,
    /** The model's block cache, when its family keeps one: built once, shared by every sequence. */
    private readonly cache: CacheManager | null,
    precision: Precision,
    /** Opens a graph role the family runs only for some requests (MDLM's denoiser_kv). */
    open: (role: string) => Promise<ort.InferenceSession>,
  ) {
    const m = dir.manifest;
    this.model = modelInfo(m, opts.device, precision);
    const runner = sessionRunner(m, this.sessions, open);
    this.scheduler = new Scheduler(runner, {
      finished: (seq) => this.finish(seq),
      failed: (seq, err) => {
        this.events.error({ type: 'error', id: seq.id, code: 'engine_error', message: String((err as Error)?.message ?? err) });
      },
      tick: (calls) => this.events.stats?.(this.stats(calls)),
      settle: (seq) => { if (this.lowEntropy.has(seq.id)) seq.stop('stop'); },
    }, opts.maxBatch ?? DEFAULT_MAX_BATCH, opts.maxQueue ?? DEFAULT_MAX_QUEUE);
    this.loopDone = this.scheduler.loop();
  }

  static async open(opts: EngineOptions, events: CoreEvents): Promise<EngineCore> {
    const dir = loadModelDir(opts.modelDir, { served: true });
    const m = dir.manifest;
    if (!familyOf(m)) {
      throw new EngineRequestError('unsupported_model', `model ${m.name}: family '${m.family}' is not served by this engine yet`);
    }
    const sessions = new Map<string, ort.InferenceSession>();
    const pick = pickPrecision(dir, opts.precision ?? 'fp32', opts.device);
    const paths = await openablePaths(pick);
    const sessionOpts = { ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.optimizedCacheDir !== undefined ? { optimizedCacheDir: opts.optimizedCacheDir } : {}) };
    // Only the graphs every request runs: MDLM's denoiser_kv (kv_cache) opens with its first
    // request instead, so engines that never see one pay neither its memory nor its load time.
    for (const role of REQUIRED_GRAPHS[m.family]) {
      sessions.set(role, await openDeviceSession(paths[role]!, opts.device, sessionOpts));
      markStartup('engine:session', { role });
    }
    const layout = familyOf(m)!.cacheLayout?.(m);
    // kv_cache's graph opens with its first request: its weight pin is hashed then, not at start.
    const opening = new Map<string, Promise<ort.InferenceSession>>();
    const open = (role: string): Promise<ort.InferenceSession> => {
      let p = opening.get(role);
      if (!p) {
        p = (async () => {
          const from = m.graphs[role]?.weights_from;
          if (from) checkWeightsFrom(dir.dir, role, from);
          const s = await openDeviceSession(dir.graphPaths[role]!, opts.device, sessionOpts);
          sessions.set(role, s);
          return s;
        })();
        opening.set(role, p);
      }
      return p;
    };
    return new EngineCore(dir, sessions, opts, events, layout ? new CacheManager(layout, opts.cacheBudgetBytes) : null, pick.precision, open);
  }

  /**
   * Starts a sequence. Its settings were validated before admission (validateParams, which the
   * server runs); throws EngineRequestError only for a duplicate id or a full queue.
   */
  generate(id: number, prompt: number[], params: GenerationParams): void {
    if (this.live.has(id)) throw new EngineRequestError('duplicate_id', `sequence ${id} is already running`);
    const m = this.dir.manifest;
    const family = familyOf(m)!;
    const entropy = entropyStop(params);
    const seq = family.create(id, prompt, params, {
      manifest: m,
      cache: this.cache,
      sink: {
        commit: (tokens) => {
          this.scheduler.tokensTotal += tokens.length;
          this.events.commit(id, tokens);
          if (entropy?.push(tokens)) this.lowEntropy.add(id);
        },
        step: (view) => this.events.step({ type: 'step', id, ...view }),
      },
    });
    if (!this.scheduler.submit(seq)) throw new EngineRequestError('queue_full', 'the engine queue is full; retry later');
    this.live.set(id, seq);
  }

  cancel(id: number): void {
    this.scheduler.cancel(id);
  }

  private finish(seq: Sequence): void {
    if (!this.live.delete(seq.id)) return;
    const reason = seq.finishReason ?? 'error';
    const lowEntropy = this.lowEntropy.delete(seq.id) && reason === 'stop';
    this.events.done({ type: 'done', id: seq.id, reason, usage: seq.usage(), ...(lowEntropy ? { stopReason: 'low_entropy' as const } : {}) });
  }

  /** The gauges and counters now, with one tick's calls (pushed with the tick's results, never pulled). */
  private stats(calls: readonly TickStats[]): StatsMsg {
    const pool = this.cache?.stats();
    return {
      type: 'stats', queued: this.scheduler.queued, running: this.scheduler.live,
      cacheBytes: pool?.bytes ?? 0, cacheBudgetBytes: pool?.budgetBytes ?? 0, kvFallbacksTotal: pool?.privateFallbacks ?? 0,
      nfeTotal: this.scheduler.nfeTotal, tokensTotal: this.scheduler.tokensTotal,
      stepSeconds: calls.map((c) => c.seconds), batchSizes: calls.map((c) => c.batch),
    };
  }

  async close(): Promise<void> {
    this.scheduler.close();
    await this.loopDone;
    for (const s of this.sessions.values()) await s.release();
  }
}
