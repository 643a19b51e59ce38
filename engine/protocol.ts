// Messages between the server (API process) and the engine (its own process), over Node's IPC
// channel (engine/client.ts forks engine/main.ts). The server speaks text and client ids; the
// engine speaks token ids and its own sequence ids. Nothing here imports the server.
import type { KvCacheMode } from './kv-cache-modes.js';
import type { Manifest } from './manifest.js';

/** ReMDM's remasking schedules (engine/samplers/remdm-schedule.ts). */
export const REMASKING_SCHEDULES = ['cap', 'rescale', 'conf', 'loop'] as const;
export type RemaskingSchedule = (typeof REMASKING_SCHEDULES)[number];

/** Whole-sequence K/V reuse (Fast-dLLM's caches, engine/families/mdlm-kv.ts); off: none. */
export { KV_CACHE_MODES, type KvCacheMode } from './kv-cache-modes.js';

/** Engine-side settings of one sequence, already validated and with defaults filled in. */
export interface GenerationParams {
  /** Most tokens to generate (completion tokens). */
  maxTokens: number;
  /** Sampler name; one of ModelInfo.samplers. */
  sampler: string;
  /** Denoising steps: per window for whole-sequence models, per block for block models. */
  steps: number;
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Seed of the sequence's RNG: the same seed and settings give the same tokens. */
  seed: number;
  /** Keep generating past EOS, to exactly maxTokens (as vLLM's ignore_eos). */
  ignoreEos: boolean;
  /** Token ids that end the sequence (EOS unless ignoreEos; plus any the server adds). */
  stopTokenIds: number[];
  /** Send a `step` message after every denoising step. */
  streamSteps: boolean;
  /** Block families: tokens per block. Whole-sequence families: window length, if set. */
  blockSize?: number;
  /** Fast-dLLM: unmask every position whose confidence exceeds this. */
  confidenceThreshold?: number;
  /** Fast-dLLM's factor rule (sampler confidence_factor): the largest n with (n + 1)(1 - c_n) < f. */
  confidenceFactor?: number;
  /** EB-sampler (sampler entropy_bound): the entropies committed per call, less the largest, stay <= this (nats). */
  entropyBound?: number;
  /** Step messages also carry each masked position's arg max proposal (`drafts`). */
  streamDrafts?: boolean;
  /** ReMDM remasking on masked models. */
  remasking?: RemaskingParams;
  /** ASSD: tokens drafted per call. */
  speculativeK?: number;
  /**
   * BD3-LM's variable-length rule: end the sequence once the unigram entropy (nats) of its last
   * `entropyWindow` generated tokens falls below this. Absent or 0: off.
   */
  minEntropy?: number;
  /** Generated tokens the entropy rule looks back over (BD3-LM: 256). */
  entropyWindow?: number;
  /** MDLM with a denoiser_kv graph: reuse keys/values across steps (absent: off). */
  kvCache?: KvCacheMode;
  /** With kvCache prefix or dual: also recompute the cache every this many calls (1: every call). */
  cacheRefresh?: number;
  /** With kvCache prefix or dual: the sub-block length the window is cut into (absent: KV_SUB_BLOCK, 32). */
  cacheBlock?: number;
}

export interface RemaskingParams {
  schedule: RemaskingSchedule;
  /** Remasking strength (ReMDM's eta); absent: the schedule's default. */
  eta?: number;
  /** loop schedule: the window of time [tOn, tOff] in which remasking runs. */
  tOn?: number;
  tOff?: number;
  /** loop schedule: the alpha (share of decoded tokens) held while the loop remasks. */
  alphaOn?: number;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Network calls made for this sequence (a batched call counts once per sequence in it). */
  nfe: number;
  /** Prompt tokens served from the shared cache instead of recomputed. */
  cachedTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

/** What the server needs to validate requests before they reach the engine (engine/validate.ts). */
export interface ModelInfo {
  name: string;
  family: string;
  vocabSize: number;
  maxLength: number;
  maskId: number | null;
  eosId: number | null;
  samplers: string[];
  /** Defaults applied where a request leaves a setting out. */
  defaults: Omit<GenerationParams, 'seed' | 'stopTokenIds' | 'streamSteps'>;
  /** Limits the server checks (inclusive). */
  limits: {
    maxSteps: number;
    blockSizes: number[] | null;
    maxSpeculativeK: number | null;
    /**
     * Most completion tokens a request may ask for, or null: what the context leaves after the
     * prompt. Block families slide their window and so may write past their context.
     */
    maxTokens: number | null;
  };
  device: string;
  /** What the graphs compute in: fp32, or int8 (quantized variants, engine/precision.ts). */
  precision: string;
  /** The model directory's manifest as the engine loaded it: what validateParams checks against. */
  manifest: Manifest;
}

// ---- server -> engine ----

export interface GenerateMsg {
  type: 'generate';
  /** Engine sequence id, unique for the engine's lifetime; chosen by the server. */
  id: number;
  prompt: number[];
  params: GenerationParams;
}

export interface CancelMsg {
  type: 'cancel';
  id: number;
}

export interface ShutdownMsg {
  type: 'shutdown';
}

export type ToEngine = GenerateMsg | CancelMsg | ShutdownMsg;

// ---- engine -> server ----

export interface ReadyMsg {
  type: 'ready';
  model: ModelInfo;
}

/**
 * Tokens that are final: they will not change again, in order, appended to the sequence's
 * output. Diffusion finalises a block (or a decoded prefix) at a time, so one message may
 * carry many tokens.
 */
export interface CommitMsg {
  type: 'commit';
  id: number;
  tokens: number[];
}

/** The canvas after a denoising step (only when params.streamSteps). */
export interface StepMsg {
  type: 'step';
  id: number;
  step: number;
  /** Absolute position of canvas[0] among the generated tokens. */
  offset: number;
  /** Token ids on the canvas; maskId where still masked. */
  canvas: number[];
  /**
   * One character per canvas position (engine/step-view.ts): 'f' final (never changes again),
   * 'p' provisional (a later step may change it), 'm' masked.
   */
  marks: string;
  /** With params.streamDrafts: each masked position's arg max proposal; -1 at the others. */
  drafts?: number[];
}

export interface DoneMsg {
  type: 'done';
  id: number;
  reason: FinishReason;
  usage: Usage;
  /** Why a 'stop' that no stop token caused: 'low_entropy' (the minEntropy rule). */
  stopReason?: 'low_entropy';
}

export interface ErrorMsg {
  type: 'error';
  /** Sequence id, or null for an engine-wide failure. */
  id: number | null;
  code: string;
  message: string;
}

/**
 * Sent after every tick with that tick's results (as vLLM attaches iteration stats to its
 * outputs), and once when the engine runs out of work: the server's metrics and its heartbeat.
 */
export interface StatsMsg {
  type: 'stats';
  /** Sequences admitted but waiting for a slot. */
  queued: number;
  /** Sequences being decoded. */
  running: number;
  /** Bytes held in the KV / encoder cache pool, and its budget. */
  cacheBytes: number;
  cacheBudgetBytes: number;
  /** kv_cache refreshes whose K/V did not fit the budget (the sequence ran that stretch uncached), since start. */
  kvFallbacksTotal?: number;
  /** Network calls and tokens since start (counters). */
  nfeTotal: number;
  tokensTotal: number;
  /** Durations of this tick's network calls, in seconds (for histograms). */
  stepSeconds: number[];
  /** Batch sizes of those calls. */
  batchSizes: number[];
}

export type FromEngine = ReadyMsg | CommitMsg | StepMsg | DoneMsg | ErrorMsg | StatsMsg;
