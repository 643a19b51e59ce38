// The engine as the server sees it. engine/client.ts implements it by running the engine in
// its own process (inference blocks the thread it runs on, and a crashed or hung engine
// must not take the server down); the same interface lets benchmarks call the engine
// directly. Everything crossing it is plain data from engine/protocol.ts.
import type { DoneMsg, ErrorMsg, GenerationParams, ModelInfo, StatsMsg, StepMsg } from './protocol.js';

export type Device = 'cpu' | 'cuda' | 'webgpu';

export interface EngineOptions {
  /** Model directory (model.json, graphs, tokenizer.json). */
  modelDir: string;
  device: Device;
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
  stats(): Promise<StatsMsg>;
  close(): Promise<void>;
}
