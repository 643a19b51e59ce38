// Whole-sequence masked diffusion (MDLM): the prompt is clean context, the next window of new
// tokens starts all [MASK] and is denoised in `steps` steps; decoded prefixes stream as soon as
// they are final, and once the window is done it slides (the tail becomes context) until EOS,
// a stop token or maxTokens.
import { promptContext } from '../prompt-start.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import { maskedCount, type MaskedSampler } from '../samplers/masked.js';
import type { RowTensor } from '../row-tensor.js';
import type { Next, Sequence, SequenceSink } from '../sequence.js';
import { maskedStepView } from '../step-view.js';
import { maskedStep, plannedSteps } from './masked-step.js';
import type { KvWindow } from './mdlm-kv.js';
import { stopTokens } from './stop-tokens.js';

export interface MaskedModel {
  vocabSize: number;
  maxLength: number;
  maskId: number;
  eosId: number | null;
  eps: number;
  /** Window length when the request sets none. */
  defaultWindow: number;
}

export class MdlmSequence implements Sequence {
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly generated: number[] = [];
  private context: number[] = [];
  private canvas = new Int32Array(0);
  private windowStart = 0;
  private committed = 0; // canvas positions already streamed
  private step = 0;
  private steps = 0;
  private cached: Float32Array | null = null;
  private dirty = true; // canvas changed since the cached logits were computed
  private nfe = 0;
  private stepCount = 0;
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: number,
    private readonly prompt: number[],
    private readonly params: GenerationParams,
    private readonly model: MaskedModel,
    private readonly sink: SequenceSink,
    /** kv_cache prefix / dual: the denoiser_kv calls instead of the plain denoiser's. */
    private readonly kv: KvWindow | null = null,
  ) {
    this.rng = new Rng(params.seed);
    this.stops = stopTokens(params, model.eosId);
    this.openWindow();
  }

  private get sampler(): MaskedSampler {
    return this.params.sampler as MaskedSampler;
  }

  private windowLength(): number {
    return Math.min(this.params.blockSize ?? this.model.defaultWindow, this.model.maxLength - 1);
  }

  private openWindow(): void {
    const remaining = this.params.maxTokens - this.generated.length;
    const W = Math.min(remaining, this.windowLength());
    const all = promptContext(this.prompt, this.model.eosId).concat(this.generated);
    this.context = all.slice(Math.max(0, all.length - (this.model.maxLength - W)));
    this.canvas = new Int32Array(W).fill(this.model.maskId);
    this.windowStart = this.generated.length;
    this.committed = 0;
    this.step = 0;
    this.steps = plannedSteps(this.params, W);
    this.cached = null;
    this.dirty = true;
    this.kv?.open();
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    if (this.sampler === 'ddpm_cache' && !this.dirty && this.cached) return { kind: 'local' };
    if (this.kv) return { kind: 'call', call: this.kv.call(this.context, this.canvas) };
    const tokens = this.context.concat(Array.from(this.canvas));
    return { kind: 'call', call: { role: 'denoiser', tokens, outputStart: this.context.length, outputLength: this.canvas.length } };
  }

  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    this.nfe++;
    if (this.kv) {
      const span = this.kv.take(logits, extra);
      if (!span) return; // cancelled while the call ran
      logits = span;
    }
    this.cached = logits;
    this.denoise(logits);
    if (this.finishReason) this.kv?.close();
  }

  advance(): void {
    this.denoise(this.cached!);
    if (this.finishReason) this.kv?.close();
  }

  private denoise(logits: Float32Array): void {
    const at = this.kv?.span(this.canvas.length, this.step, this.steps);
    const canvas = at ? this.canvas.subarray(at.from, at.to) : this.canvas;
    const changed = maskedStep(canvas, logits, at?.step ?? this.step, at?.steps ?? this.steps, this.params, this.model, this.rng);
    this.kv?.stepped();
    this.step++;
    this.stepCount++;
    this.dirty = changed > 0;
    // SUBS: an unmasked token stays what it is, so every decoded position is final.
    if (this.params.streamSteps) {
      // kv_cache dual: the logits are the current sub-block's rows only (row 0 is position at.from).
      const drafts = this.params.streamDrafts ? { logits, V: this.model.vocabSize, rowStart: -(at?.from ?? 0) } : null;
      this.sink.step(maskedStepView(this.stepCount, this.windowStart, this.canvas, this.model.maskId, true, drafts));
    }
    this.flush();
  }

  /** Stream the longest decoded prefix; stop on a stop token or maxTokens; slide when done. */
  private flush(): void {
    const fresh: number[] = [];
    let stopped = false;
    while (this.committed < this.canvas.length && this.canvas[this.committed] !== this.model.maskId) {
      const tok = this.canvas[this.committed]!;
      this.committed++;
      if (this.stops.has(tok)) { stopped = true; break; }
      fresh.push(tok);
    }
    if (fresh.length > 0) {
      for (const t of fresh) this.generated.push(t);
      this.sink.commit(fresh);
    }
    if (stopped) { this.finishReason = 'stop'; return; }
    if (this.generated.length >= this.params.maxTokens) { this.finishReason = 'length'; return; }
    if (this.committed === this.canvas.length) this.openWindow();
    else if (maskedCount(this.canvas, this.model.maskId) === 0) this.flush();
  }

  stop(reason: FinishReason): void {
    if (!this.finishReason) this.finishReason = reason;
    this.kv?.close();
  }

  usage(): Usage {
    return { promptTokens: this.prompt.length, completionTokens: this.generated.length, nfe: this.nfe, cachedTokens: 0 };
  }
}
