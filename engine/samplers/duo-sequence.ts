// Sequences of the uniform-noise and remasking samplers as the scheduler drives them: each
// says what its next network call needs (its row: tokens, sigma, latent) and consumes its row
// of the result. The scheduler batches rows of many sequences into one call; nothing here
// knows about batches, sessions or other sequences.
import type { GenerationParams } from '../protocol.js';
import { SequenceLatent } from '../loopholing.js';
import { DecodeWindow } from './duo-window.js';
import { duoPlan, duoPrior, duoStep, isDuoSampler } from './duo.js';
import type { Uniform01, X0Options } from './duo-posterior.js';
import { remdmPlan, resolveRemasking } from './remdm-schedule.js';
import { remdmStep } from './remdm.js';

export interface RowCall {
  tokens: number[];
  /** The network's time input, for time-conditioned graphs. */
  sigma: number;
  /** The carried latent (loopholing models), already sized to the row. */
  latent: SequenceLatent | null;
}

export interface ModelShape {
  vocabSize: number;
  maxLength: number;
  /** noise.eps of the manifest. */
  eps: number;
  maskId: number | null;
  /** loopholing.latent_dim, or null. */
  latentDim: number | null;
}

/** What a step reports back: tokens that became final, and the canvas (for `step` messages). */
export interface StepOutcome {
  committed: number[];
  canvas: Int32Array;
  /** Absolute position of canvas[0] among the generated tokens. */
  offset: number;
}

abstract class WindowedSequence {
  nfe = 0;
  protected readonly window: DecodeWindow;
  protected canvas: Int32Array = new Int32Array(0);
  protected context: number[] = [];
  protected step = 0;
  // Opened on first use: subclasses' fields are not initialised yet inside this constructor.
  private opened = false;
  protected readonly x0: X0Options;
  readonly latent: SequenceLatent | null;

  constructor(
    protected readonly model: ModelShape,
    prompt: number[],
    protected readonly params: GenerationParams,
    protected readonly rng: Uniform01,
  ) {
    this.window = new DecodeWindow(prompt, {
      maxLength: model.maxLength,
      maxTokens: params.maxTokens,
      blockSize: params.blockSize,
      stopTokenIds: params.stopTokenIds,
      ignoreEos: params.ignoreEos,
    });
    this.x0 = { temperature: params.temperature, topP: params.topP, topK: params.topK };
    this.latent = model.latentDim ? new SequenceLatent(model.latentDim, 0) : null;
  }

  get finish(): 'stop' | 'length' | null {
    return this.window.finish;
  }

  /** The row for the next call, or null when finished. */
  next(): RowCall | null {
    if (!this.opened) {
      this.opened = true;
      this.openWindow();
    }
    if (this.window.finish) return null;
    return { tokens: [...this.context, ...this.canvas], sigma: this.sigma(), latent: this.latent };
  }

  /** Consume this row's logits ([row length, V]; latent_out already unpacked into `latent`). */
  consume(logits: Float32Array): StepOutcome {
    this.nfe++;
    const offset = this.window.committed.length;
    const last = this.advance(logits);
    this.step++;
    const canvas = this.canvas.slice();
    const committed = last ? this.window.commit(this.canvas) : [];
    if (last && !this.window.finish) this.openWindow();
    return { committed, canvas, offset };
  }

  protected abstract sigma(): number;
  protected abstract initCanvas(length: number): Int32Array;
  /** Run the sampler step on this row; true when the window's last step was taken. */
  protected abstract advance(logits: Float32Array): boolean;

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
  }
}

/** Duo: uniform noise, every position revisable, `steps` calls per window. */
export class DuoSequence extends WindowedSequence {
  protected sigma(): number {
    return duoPlan(this.step, this.params.steps, this.model.eps).sigma;
  }

  protected initCanvas(length: number): Int32Array {
    return duoPrior(length, this.model.vocabSize, this.rng);
  }

  protected advance(logits: Float32Array): boolean {
    const sampler = this.params.sampler;
    if (!isDuoSampler(sampler)) throw new Error(`DuoSequence cannot run sampler '${sampler}'`);
    const plan = duoPlan(this.step, this.params.steps, this.model.eps);
    duoStep({ sampler, plan, logits, canvasStart: this.context.length, V: this.model.vocabSize, canvas: this.canvas, x0: this.x0, rng: this.rng });
    return plan.final;
  }
}

/**
 * A masked model decoded with ReMDM (remasking = {schedule cap, eta 0} is plain MDLM
 * ancestral sampling), carrying the LDDM latent when the model has one.
 */
export class RemdmSequence extends WindowedSequence {
  private conf = new Float64Array(0);
  private readonly remasking = resolveRemasking(this.params.remasking ?? { schedule: 'cap', eta: 0 });

  protected sigma(): number {
    return -Math.log(remdmPlan(this.step, this.params.steps, this.model.eps, this.remasking).alphaForSigma);
  }

  protected initCanvas(length: number): Int32Array {
    if (this.model.maskId === null) throw new Error('RemdmSequence needs a masked model');
    this.conf = new Float64Array(length).fill(-Infinity);
    return new Int32Array(length).fill(this.model.maskId);
  }

  protected advance(logits: Float32Array): boolean {
    const plan = remdmPlan(this.step, this.params.steps, this.model.eps, this.remasking);
    remdmStep({
      plan,
      eta: this.remasking.eta,
      logits,
      canvasStart: this.context.length,
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
