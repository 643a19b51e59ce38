// ReMDM: one denoising step of a masked model with remasking. Decoded tokens may go back
// to [MASK] with probability sigma; masked positions decode with the mass that keeps every
// step's marginal equal to the forward process's (so sigma = 0 is exactly MDLM).
// The canvas is the generated part only: prompt tokens are never remasked.
import { sampleCategorical, x0Distribution, type Uniform01, type X0Options } from './duo-posterior.js';
import type { RemdmStepPlan } from './remdm-schedule.js';

export const REMDM_SAMPLER = 'remdm';

/**
 * q_sigma(z_s | z_t, x0 = p) at one position, over V entries (the mask id among them).
 * Decoded z_t: keep it with 1 - sigma, remask with sigma. Masked z_t: token j with
 * p_j (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t), stay masked with the rest.
 * Needs 0 <= sigma <= sigmaMax(alpha_s, alpha_t). Writes into `out` and returns it.
 */
export function remdmPosterior(
  p: Float64Array,
  zt: number,
  maskId: number,
  alphaS: number,
  alphaT: number,
  sigma: number,
  out = new Float64Array(p.length),
): Float64Array {
  out.fill(0);
  if (zt !== maskId) {
    out[zt] = 1 - sigma;
    out[maskId]! += sigma;
    return out;
  }
  const decode = (alphaS - (1 - sigma) * alphaT) / (1 - alphaT);
  for (let j = 0; j < p.length; j++) out[j] = p[j]! * decode;
  out[maskId] = (1 - alphaS - sigma * alphaT) / (1 - alphaT);
  return out;
}

/**
 * Per-position remasking weights of the 'conf' schedule: a softmax over the decoded
 * positions' scores, where a score is minus the probability its token had when decoded
 * (so confident tokens are remasked least). Masked positions score -Infinity and get 0.
 */
export function confidenceWeights(conf: Float64Array): Float64Array {
  const w = new Float64Array(conf.length);
  let max = -Infinity;
  for (const c of conf) if (c > max) max = c;
  if (max === -Infinity) return w;
  let sum = 0;
  for (let i = 0; i < conf.length; i++) {
    const e = conf[i] === -Infinity ? 0 : Math.exp(conf[i]! - max);
    w[i] = e;
    sum += e;
  }
  for (let i = 0; i < conf.length; i++) w[i]! /= sum;
  return w;
}

export interface RemdmStepInput {
  plan: RemdmStepPlan;
  /** The conf schedule's strength: sigma_i = eta * weight_i * sigmaMax. */
  eta: number;
  /** Raw logits of the sequence's row, [L, V] flattened. */
  logits: Float32Array;
  /** Row of canvas[0] in logits. */
  canvasStart: number;
  V: number;
  maskId: number;
  /** Tokens of the canvas (maskId where masked), updated in place. */
  canvas: Int32Array;
  /**
   * The conf schedule's scores, one per canvas position, updated in place: -p(token) when
   * it was decoded, -Infinity while masked. Start it filled with -Infinity.
   */
  conf: Float64Array;
  x0: X0Options;
  rng: Uniform01;
}

/** One step; returns how many canvas positions changed (0 lets the engine reuse the logits). */
export function remdmStep(inp: RemdmStepInput): number {
  const { plan, logits, canvasStart, V, maskId, canvas, conf, rng } = inp;
  const weights = plan.byConfidence ? confidenceWeights(conf) : null;
  const p = new Float64Array(V);
  let changed = 0;
  for (let i = 0; i < canvas.length; i++) {
    const zt = canvas[i]!;
    const sigma = weights ? Math.min(plan.sigmaMax, inp.eta * weights[i]! * plan.sigmaMax) : plan.sigma;
    // One draw per position from remdmPosterior's distribution, without building it: a
    // decoded token goes back to [MASK] with sigma (SUBS copies it, so its x0 is a point
    // mass); a masked one decodes with total mass `decode` whatever p is (p sums to one), so
    // the denoiser's distribution is computed only for the positions that decode.
    const u = rng();
    let zs: number;
    if (zt !== maskId) {
      zs = u < sigma ? maskId : zt;
    } else {
      const decode = (plan.alphaS - (1 - sigma) * plan.alphaT) / (1 - plan.alphaT);
      if (!(u < decode)) continue;
      x0Distribution(logits, (canvasStart + i) * V, V, inp.x0, p, maskId);
      zs = sampleCategorical(p, Math.min(u / decode, 1 - Number.EPSILON));
    }
    if (zs === zt) continue;
    changed++;
    canvas[i] = zs;
    conf[i] = zs === maskId ? -Infinity : -p[zs]!;
  }
  return changed;
}
