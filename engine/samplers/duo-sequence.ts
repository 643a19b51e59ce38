// Sequences of the uniform-noise (Duo) and remasking (ReMDM, LDDM) samplers as the scheduler
// drives them. Each says what its next network call needs (its row: tokens, sigma as a
// per-row scalar, the carried latent as a per-row [L, D] input) and consumes its row of the
// result (the canvas logits, and latent_out when it carries a latent). Nothing here knows
// about batches or other sequences. Duo and ReMDM may change any canvas token until the
// window's last step, so a window's tokens commit together when it ends.
import { promptContext } from '../prompt-start.js';
import { SequenceLatent } from '../loopholing.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import type { RowTensor } from '../row-tensor.js';
import type { Next, RowCall, Sequence, SequenceSink } from '../sequence.js';
import type { DuoKvWindow } from '../families/duo-kv.js';
import type { KvSpan } from '../families/kv-past.js';
import { maskedStepView, marksOf, type StepView } from '../step-view.js';
import { DecodeWindow } from './duo-window.js';
import { duoPlan, duoPrior, duoStep, isDuoSampler } from './duo.js';
import type { Uniform01, X0Options } from './duo-posterior.js';
import { remdmPlan, resolveRemasking } from './remdm-schedule.js';
import { remdmStep } from './remdm.js';

/** What these sequences need to know of the model (from its manifest). */
export interface WindowedModel {
  vocabSize: number;
  maxLength: number;
  /** noise.eps of the manifest. */
  eps: number;
  maskId: number | null;
  eosId: number | null;
  /** loopholing.latent_dim, or null. */
  latentDim: number | null;
  /** Whether the denoiser graph takes sigma (fed only then). */
  readsSigma: boolean;
}

abstract class WindowedSequence implements Sequence {
  finishReason: FinishReason | null = null;
  private nfe = 0;
  /** Steps taken over the whole sequence: the step frames' `step`. */
  protected stepCount = 0;
  protected readonly window: DecodeWindow;
  protected canvas: Int32Array = new Int32Array(0);
  protected context: number[] = [];
  protected step = 0;
  // Opened on first use: subclasses' fields are not initialised yet inside this constructor.
  private opened = false;
  protected readonly x0: X0Options;
  protected readonly rng: Uniform01;
  /** The carried latent of a loopholing model, one [D] vector per row position. */
  readonly latent: SequenceLatent | null;

  constructor(
    readonly id: number,
    private readonly prompt: readonly number[],
    protected readonly params: GenerationParams,
    protected readonly model: WindowedModel,
    private readonly sink: SequenceSink,
  ) {
    const stops = params.ignoreEos ? [] : [...params.stopTokenIds];
    if (!params.ignoreEos && model.eosId !== null && !stops.includes(model.eosId)) stops.push(model.eosId);
    this.window = new DecodeWindow(promptContext(prompt, model.eosId), {
      maxLength: model.maxLength,
      maxTokens: params.maxTokens,
      ...(params.blockSize !== undefined ? { blockSize: params.blockSize } : {}),
      stopTokenIds: stops,
      ignoreEos: params.ignoreEos,
    });
    const gen = new Rng(params.seed);
    this.rng = () => gen.next();
    this.x0 = { temperature: params.temperature, topP: params.topP, topK: params.topK };
    this.latent = model.latentDim ? new SequenceLatent(model.latentDim, 0) : null;
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    if (!this.opened) {
      this.opened = true;
      this.openWindow();
    }
    if (this.window.finish) {
      this.finishReason = this.window.finish;
      return { kind: 'done' };
    }
    return { kind: 'call', call: this.call() };
  }

  /** The row's own inputs besides tokens: sigma when the graph reads it, the carried latent. */
  protected inputs(): Record<string, RowTensor> {
    const inputs: Record<string, RowTensor> = {};
    if (this.model.readsSigma) inputs.sigma = { type: 'float32', data: Float32Array.of(this.sigma()), dims: [] };
    if (this.latent) inputs.latent_in = { type: 'float32', data: this.latent.data, dims: [this.latent.length, this.latent.dim] };
    return inputs;
  }

  /** The plain denoiser over context + canvas. */
  protected call(): RowCall {
    return {
      role: 'denoiser',
      tokens: [...this.context, ...this.canvas],
      outputStart: this.context.length,
      outputLength: this.canvas.length,
      inputs: this.inputs(),
      ...(this.latent ? { outputs: ['latent_out'] } : {}),
    };
  }

  /** The logits the step reads from a call's answer; null: ignore the answer (the sequence ended meanwhile). */
  protected rowsOf(logits: Float32Array, _extra?: Record<string, RowTensor>): Float32Array | null {
    return logits;
  }

  consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    this.nfe++;
    if (this.latent) {
      const out = extra?.latent_out;
      if (!out || out.dims[out.dims.length - 1] !== this.latent.dim) {
        throw new Error(`the denoiser returned no latent_out of width ${this.latent.dim}`);
      }
      // The row's slice is padded to the batch's longest row; its own positions come first.
      this.latent.data.set((out.data as Float32Array).subarray(0, this.latent.length * this.latent.dim));
    }
    const rows = this.rowsOf(logits, extra);
    if (!rows) return;
    logits = rows;
    const last = this.denoise(logits);
    this.step++;
    this.stepCount++;
    if (this.params.streamSteps) this.sink.step(this.stepView(logits, last));
    if (!last) return;
    const committed = this.window.commit(this.canvas);
    if (committed.length > 0) this.sink.commit(committed);
    if (this.window.finish) this.finishReason = this.window.finish;
    else this.openWindow();
  }

  /** These samplers always call the network: sigma (or the latent) changes every step. */
  advance(): void {
    throw new Error(`sequence ${this.id} has no local steps`);
  }

  stop(reason: FinishReason): void {
    if (!this.finishReason) this.finishReason = reason;
  }

  usage(): Usage {
    return { promptTokens: this.prompt.length, completionTokens: this.window.committed.length, nfe: this.nfe, cachedTokens: 0 };
  }

  /** The canvas after a step; the window's last step decides every position (it commits). */
  protected abstract stepView(logits: Float32Array, last: boolean): StepView;

  /** Where the window's tokens will go once it commits: the step frames' offset. */
  protected get offset(): number {
    return this.window.committed.length;
  }

  /** The network's time input for the next call. */
  protected abstract sigma(): number;
  protected abstract initCanvas(length: number): Int32Array;
  /** Run the sampler step on the canvas logits ([canvas, V]); true when the window's last step was taken. */
  protected abstract denoise(logits: Float32Array): boolean;
  /** A new window's canvas is in place. */
  protected windowOpened(): void {}

  private openWindow(): void {
    const w = this.window.open();
    if (!w) return;
    this.context = w.context;
    this.canvas = this.initCanvas(w.canvasLength);
    this.step = 0;
    if (this.latent) {
      this.latent.dropFront(w.dropped);
      this.latent.resize(w.context.length + w.canvasLength);
    }
    this.windowOpened();
  }
}

/**
 * Duo: uniform noise, every position revisable, `steps` calls per window. With kv_cache
 * (families/duo-kv.ts) the calls are denoiser_kv calls and, in dual, each step moves one
 * sub-block of the window on its own schedule.
 */
export class DuoSequence extends WindowedSequence {
  constructor(
    id: number,
    prompt: readonly number[],
    params: GenerationParams,
    model: WindowedModel,
    sink: SequenceSink,
    private readonly kv: DuoKvWindow | null = null,
  ) {
    super(id, prompt, params, model, sink);
    if (kv && this.latent) throw new Error('kv_cache does not carry a loopholing latent');
  }

  /** The part of the canvas this step moves, at which step of how many. */
  private at(): KvSpan {
    const W = this.canvas.length;
    return this.kv?.span(W, this.step, this.params.steps) ?? { from: 0, to: W, step: this.step, steps: this.params.steps };
  }

  protected sigma(): number {
    const at = this.at();
    return duoPlan(at.step, at.steps, this.model.eps).sigma;
  }

  protected override call(): RowCall {
    return this.kv ? this.kv.call(this.context, this.canvas, this.inputs()) : super.call();
  }

  protected override rowsOf(logits: Float32Array, extra?: Record<string, RowTensor>): Float32Array | null {
    return this.kv ? this.kv.take(logits, extra) : logits;
  }

  protected override windowOpened(): void {
    this.kv?.open(this.canvas.length);
  }

  override next(): Next {
    const n = super.next();
    if (n.kind === 'done') this.kv?.close();
    return n;
  }

  override consume(logits: Float32Array, extra?: Record<string, RowTensor>): void {
    super.consume(logits, extra);
    if (this.finishReason) this.kv?.close();
  }

  override stop(reason: FinishReason): void {
    super.stop(reason);
    this.kv?.close();
  }

  protected initCanvas(length: number): Int32Array {
    return duoPrior(length, this.model.vocabSize, this.rng);
  }

  /** Any position may be resampled by a later step of the window: all provisional until the last. */
  protected stepView(_logits: Float32Array, last: boolean): StepView {
    return { step: this.stepCount, offset: this.offset, canvas: Array.from(this.canvas), marks: marksOf(this.canvas, null, last) };
  }

  protected denoise(logits: Float32Array): boolean {
    const sampler = this.params.sampler;
    if (!isDuoSampler(sampler)) throw new Error(`DuoSequence cannot run sampler '${sampler}'`);
    const at = this.at();
    const plan = duoPlan(at.step, at.steps, this.model.eps);
    const canvas = this.canvas.subarray(at.from, at.to);
    duoStep({ sampler, plan, logits, canvasStart: 0, V: this.model.vocabSize, canvas, x0: this.x0, rng: this.rng });
    this.kv?.stepped();
    // dual: the window's last step is its last sub-block's.
    return plan.final && at.to === this.canvas.length;
  }
}

/**
 * A masked model's window, decoded with ReMDM's step (remasking = {schedule cap, eta 0} is
 * plain MDLM ancestral sampling) and carrying the LDDM latent when the model has one.
 */
export class MaskedWindowSequence extends WindowedSequence {
  private conf = new Float64Array(0);
  private readonly remasking = resolveRemasking(this.params.remasking ?? { schedule: 'cap', eta: 0 });
  /** The window's last step at which a decoded token may go back to [MASK] (-1: none may). */
  private readonly lastRemask = lastRemaskStep(this.params.steps, this.model.eps, this.remasking);

  protected sigma(): number {
    return -Math.log(remdmPlan(this.step, this.params.steps, this.model.eps, this.remasking).alphaForSigma);
  }

  protected initCanvas(length: number): Int32Array {
    if (this.model.maskId === null) throw new Error('MaskedWindowSequence needs a masked model');
    this.conf = new Float64Array(length).fill(-Infinity);
    return new Int32Array(length).fill(this.model.maskId);
  }

  /** A decoded token is final once no step left in the window can remask it (this.step is the next one). */
  protected stepView(logits: Float32Array, last: boolean): StepView {
    const drafts = this.params.streamDrafts ? { logits, V: this.model.vocabSize } : null;
    return maskedStepView(this.stepCount, this.offset, this.canvas, this.model.maskId!, last || this.step > this.lastRemask, drafts);
  }

  protected denoise(logits: Float32Array): boolean {
    const plan = remdmPlan(this.step, this.params.steps, this.model.eps, this.remasking);
    remdmStep({
      plan,
      eta: this.remasking.eta,
      logits,
      canvasStart: 0,
      V: this.model.vocabSize,
      maskId: this.model.maskId!,
      canvas: this.canvas,
      conf: this.conf,
      x0: this.x0,
      rng: this.rng,
    });
    return this.step === this.params.steps - 1;
  }
}

/** The last step k of a window of `steps` whose plan can send a decoded token back to [MASK], or -1. */
export function lastRemaskStep(steps: number, eps: number, r: ReturnType<typeof resolveRemasking>): number {
  for (let k = steps - 1; k >= 0; k--) {
    const plan = remdmPlan(k, steps, eps, r);
    if (plan.byConfidence ? r.eta > 0 && plan.sigmaMax > 0 : plan.sigma > 0) return k;
  }
  return -1;
}
