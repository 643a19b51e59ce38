// The engine as the server sees it. engine/client.ts implements it by running the engine in
// its own process (inference blocks the thread it runs on, and a crashed or hung engine
// must not take the server down); the same interface lets benchmarks call the engine
// directly. Everything crossing it is plain data from engine/protocol.ts.
import type { PrecisionChoice } from './manifest.js';
import type { DoneMsg, ErrorMsg, GenerationParams, ModelInfo, StatsMsg, StepMsg } from './protocol.js';

export type Device = 'cpu' | 'cuda' | 'webgpu';

/** EngineOptions' defaults: sequences decoded together, and waiting, at most. */
export const DEFAULT_MAX_BATCH = 16;
export const DEFAULT_MAX_QUEUE = 256;

export interface EngineOptions {
  /** Model directory (model.json, graphs, tokenizer.json). */
  modelDir: string;
  device: Device;
  /** Which graph files: fp32 (default here), int8, or auto (the manifest's default for the device). */
  precision?: PrecisionChoice;
  /** ONNX Runtime intra-op threads (CPU); default: all cores. */
  threads?: number;
  /** Sequences decoded together at most; the rest wait in the queue. */
  maxBatch?: number;
  /** Sequences waiting at most; beyond it generate() fails with code 'queue_full'. */
  maxQueue?: number;
  /** Bytes the KV / encoder cache pool may hold. */
  cacheBudgetBytes?: number;
  /** Folder where CPU sessions keep ONNX Runtime's optimised graphs between starts; unset: none. */
  optimizedCacheDir?: string;
  /**
   * An engine that sends nothing for this long while sequences are in flight is hung: it is
   * killed and restarted (default 60 s; every tick sends its stats, so a live engine is heard).
   */
  watchdogMs?: number;
}

/** Callbacks for one sequence. `done` comes exactly once and last, whatever happens. */
export interface SequenceEvents {
  /** Final tokens, in order, appended to the output. */
  commit(tokens: number[]): void;
  /** The canvas after a denoising step (only when params.streamSteps). */
  step?(msg: StepMsg): void;
  /** A failure of this sequence; `done` with reason 'error' follows. */
  error?(msg: ErrorMsg): void;
  done(msg: DoneMsg): void;
}

export interface SequenceHandle {
  readonly id: number;
  /** Stop decoding and free what the sequence holds; `done` follows with reason 'cancelled'. */
  cancel(): void;
}

export interface Engine {
  readonly model: ModelInfo;
  generate(prompt: number[], params: GenerationParams, events: SequenceEvents): SequenceHandle;
  /** The stats the engine pushes after every tick (metrics); returns the unsubscribe. */
  onStats(listener: (stats: StatsMsg) => void): () => void;
  /** The engine is up and, while sequences are in flight, has been heard from lately. */
  healthy(): boolean;
  close(): Promise<void>;
}
