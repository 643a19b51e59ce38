// The Duo samplers: one denoising step of a uniform-state model over a sequence's canvas.
// Every position can change at every step (no token is ever final before the last step),
// which is what lets Duo sample in few steps. The canvas starts as uniform noise over the
// whole vocabulary; the last call is the noise-removal step: either the ancestral
// posterior to alpha = 1 ('duo') or the arg-max of the denoiser ('duo_greedy', the greedy
// tail that the Duo paper uses for few-step sampling).
import {
  argmax,
  duoDraw,
  duoTimeGrid,
  logLinearAlpha,
  sigmaOfAlpha,
  x0Distribution,
  type Uniform01,
  type X0Options,
} from './duo-posterior.js';

export const DUO_SAMPLERS = ['duo', 'duo_greedy'] as const;
export type DuoSampler = (typeof DUO_SAMPLERS)[number];

export function isDuoSampler(name: string): name is DuoSampler {
  return (DUO_SAMPLERS as readonly string[]).includes(name);
}

/** The noise prior: every canvas position uniform over the vocabulary. */
export function duoPrior(length: number, V: number, rng: Uniform01): Int32Array {
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.min(V - 1, Math.floor(rng() * V));
  return out;
}

/** Where a sequence is in its schedule: what the next network call needs and does. */
export interface DuoStepPlan {
  /** Network time input for this call. */
  sigma: number;
  alphaT: number;
  /** 1 on the final (noise-removal) step. */
  alphaS: number;
  final: boolean;
}

/** The plan of step `k` (0-based) of `steps`, under the log-linear schedule with `eps`. */
export function duoPlan(k: number, steps: number, eps: number, tMin = 1e-5): DuoStepPlan {
  const grid = duoTimeGrid(steps, tMin);
  if (!(k >= 0 && k < steps)) throw new RangeError(`step ${k} is outside 0..${steps - 1}`);
  const alphaT = logLinearAlpha(grid[k]!, eps);
  const final = k === steps - 1;
  const alphaS = final ? 1 : logLinearAlpha(grid[k + 1]!, eps);
  return { sigma: sigmaOfAlpha(alphaT), alphaT, alphaS, final };
}

export interface DuoStepInput {
  sampler: DuoSampler;
  plan: DuoStepPlan;
  /** Raw logits of the sequence's row, [L, V] flattened, float32 as ONNX returns them. */
  logits: Float32Array;
  /** Position (row index into logits) of canvas[0]. */
  canvasStart: number;
  V: number;
  /** Current tokens of the canvas, updated in place. */
  canvas: Int32Array;
  x0: X0Options;
  rng: Uniform01;
}

/**
 * One step: for each canvas position draw x_s from the posterior (or take the arg-max on
 * the greedy tail). Returns how many positions changed (the engine reports it; Duo cannot
 * skip network calls on it, since sigma changes every step).
 */
export function duoStep(inp: DuoStepInput): number {
  const { plan, logits, canvasStart, V, canvas, rng } = inp;
  const p = new Float64Array(V);
  let changed = 0;
  for (let i = 0; i < canvas.length; i++) {
    const off = (canvasStart + i) * V;
    let next: number;
    if (plan.final && inp.sampler === 'duo_greedy') {
      next = argmax(logits, off, V);
    } else {
      x0Distribution(logits, off, V, inp.x0, p);
      next = duoDraw(p, canvas[i]!, plan.alphaS, plan.alphaT, rng());
    }
    if (next !== canvas[i]) changed++;
    canvas[i] = next;
  }
  return changed;
}
