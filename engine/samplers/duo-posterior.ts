// Uniform-state diffusion (Duo / UDLM) math: the log-linear schedule, the time grid, the
// denoiser's x0 distribution and the ancestral posterior q(x_s | x_t, x0 = p_theta).
// Everything is float64: with V in the tens of thousands the posterior's uniform term
// (1 - alpha)/V is far below float32's resolution next to the model's top probability,
// which is why the reference computes it in float64 too.

import { truncate } from './nucleus.js';

/** A draw in [0, 1); the engine's seeded RNG, so that the same seed gives the same tokens. */
export type Uniform01 = () => number;

/** Log-linear schedule: alpha_t = 1 - (1 - eps) t, so alpha_1 = eps and alpha_0 = 1. */
export function logLinearAlpha(t: number, eps: number): number {
  return 1 - (1 - eps) * t;
}

/** The network's time input: sigma = -log(alpha_t), as both Duo and MDLM feed it. */
export function sigmaOfAlpha(alpha: number): number {
  return -Math.log(alpha);
}

/**
 * Times at which the network is called: `steps` points from 1 down to tMin. The last call
 * (at tMin) is the noise-removal step that lands on clean tokens, so a request of N steps
 * costs exactly N network calls.
 */
export function duoTimeGrid(steps: number, tMin = 1e-5): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (steps === 1) return [1];
  const out: number[] = [];
  for (let k = 0; k < steps; k++) out.push(1 - ((1 - tMin) * k) / (steps - 1));
  return out;
}

export interface X0Options {
  /** Softmax temperature; 0 puts all mass on the arg-max. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps everything. */
  topP: number;
  /** Keep the k most likely tokens; 0 keeps everything. */
  topK: number;
}

/** A token the distribution must never put mass on (MDLM's SUBS: the [MASK] id). */
export type Excluded = number | null;

/**
 * The denoiser's distribution over clean tokens at one position, from raw logits
 * `logits[off .. off+V)`: temperature, top-k, nucleus, renormalised, in float64.
 * A token id in `exclude` gets probability zero.
 * Writes into `out` (length V) and returns it.
 */
export function x0Distribution(
  logits: Float32Array,
  off: number,
  V: number,
  opt: X0Options,
  out = new Float64Array(V),
  exclude: Excluded = null,
): Float64Array {
  // A typed view of the row keeps the loops monomorphic (this runs V times per position per step).
  const row = logits.subarray(off, off + V);
  let best = 0;
  let max = -Infinity;
  for (let j = 0; j < V; j++) {
    const l = row[j]!;
    if (l > max && j !== exclude) {
      max = l;
      best = j;
    }
  }
  if (opt.temperature === 0 || opt.topK === 1) {
    out.fill(0);
    out[best] = 1;
    return out;
  }
  const invT = 1 / opt.temperature;
  let sum = 0;
  for (let j = 0; j < V; j++) {
    const e = j === exclude ? 0 : Math.exp((row[j]! - max) * invT);
    out[j] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let j = 0; j < V; j++) out[j]! *= inv;
  const k = opt.topK > 0 && opt.topK < V ? opt.topK : V;
  if (k < V || opt.topP < 1) truncate(out, k, opt.topP);
  return out;
}

/**
 * Duo's ancestral posterior at one position: q(x_s = j | x_t, x0 = p) for the uniform
 * forward process q(x_t | x_0) = alpha_t onehot(x_0) + (1 - alpha_t)/V, with the model's
 * distribution p plugged in for x0. It equals Bayes' rule with p as the prior over x0:
 * sum_x0 p(x0) q(x_s | x0) q(x_t | x_s), normalised (the tests enumerate exactly that).
 * alphaS = 1 gives the noise-removal step. Writes into `out` and returns it (sums to one).
 */
export function duoPosterior(p: Float64Array, xt: number, alphaS: number, alphaT: number, out = new Float64Array(p.length)): Float64Array {
  const V = p.length;
  if (!(alphaT > 0 && alphaT <= alphaS && alphaS <= 1)) {
    throw new RangeError(`need 0 < alpha_t <= alpha_s <= 1, got alpha_t=${alphaT} alpha_s=${alphaS}`);
  }
  const alphaTS = alphaT / alphaS;
  const dAlpha = alphaS - alphaT;
  const floor = ((1 - alphaTS) * (1 - alphaS)) / V;
  const denom = alphaT * V * p[xt]! + (1 - alphaT);
  for (let j = 0; j < V; j++) out[j] = (dAlpha * p[j]! + floor) / denom;
  out[xt]! += (alphaT * V * p[xt]! + (alphaTS - alphaT)) / denom;
  return out;
}

/**
 * One draw from duoPosterior(p, xt, alphaS, alphaT) without building it: the posterior is a
 * mixture of p itself (mass (alpha_s - alpha_t)/denom), the uniform floor (V floor/denom) and
 * a point mass on x_t (the rest), so `u` picks the component and only the p part needs a scan.
 */
export function duoDraw(p: Float64Array, xt: number, alphaS: number, alphaT: number, u: number): number {
  const V = p.length;
  const alphaTS = alphaT / alphaS;
  const floor = ((1 - alphaTS) * (1 - alphaS)) / V;
  const denom = alphaT * V * p[xt]! + (1 - alphaT);
  const fromP = (alphaS - alphaT) / denom;
  if (u < fromP) return sampleCategorical(p, Math.min(u / fromP, 1 - Number.EPSILON));
  const fromFloor = (V * floor) / denom;
  if (u < fromP + fromFloor) return Math.min(V - 1, Math.floor(((u - fromP) / fromFloor) * V));
  return xt;
}

/** Inverse-CDF draw from a distribution that sums to one (float rounding goes to the last non-zero entry). */
export function sampleCategorical(p: ArrayLike<number>, u: number): number {
  let acc = 0;
  let last = 0;
  for (let j = 0; j < p.length; j++) {
    const pj = p[j]!;
    if (pj <= 0) continue;
    acc += pj;
    last = j;
    if (u < acc) return j;
  }
  return last;
}

export function argmax(a: ArrayLike<number>, off = 0, n = a.length - off): number {
  let best = 0;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = a[off + j]!;
    if (v > max) {
      max = v;
      best = j;
    }
  }
  return best;
}
