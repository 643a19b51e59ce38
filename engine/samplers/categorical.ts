// Turning one position's logits into a distribution over tokens, and drawing from it.
// Work is in float64: after temperature and nucleus cuts the tail probabilities are tiny.
import { expRowSum, rowWeights } from './exp-row.js';
import { truncate } from './nucleus.js';

export interface Shaping {
  /** 0 = greedy (arg max). */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
}

/** The first index of the largest logit other than `banned`; -1 when none is larger than -Infinity. */
function argMax(logits: Float32Array, off: number, V: number, banned: number | null): number {
  let max = -Infinity;
  let arg = -1;
  for (let v = 0; v < V; v++) {
    if (v === banned) continue;
    const x = logits[off + v]!;
    if (x > max) { max = x; arg = v; }
  }
  return arg;
}

/**
 * Normalised probabilities of one row of logits, with `banned` ids (such as [MASK], which SUBS
 * never predicts) at zero, then temperature, top-k and top-p. Temperature 0 puts all mass on
 * the arg max.
 */
export function distribution(logits: Float32Array, off: number, V: number, s: Shaping, banned: number | null,
  out = new Float64Array(V)): Float64Array {
  const arg = argMax(logits, off, V, banned);
  const max = arg < 0 ? -Infinity : logits[off + arg]!;
  if (s.temperature === 0) {
    out.fill(0);
    out[Math.max(arg, 0)] = 1;
    return out;
  }
  const sum = expRowSum(logits, off, V, max, 1 / s.temperature, banned);
  const e = rowWeights();
  for (let v = 0; v < V; v++) out[v] = e[v]! / sum;
  const k = s.topK > 0 && s.topK < V ? s.topK : V;
  if (k < V || s.topP < 1) truncate(out, k, s.topP);
  return out;
}

// Scratch for draw's distribution when it cuts (one engine thread, no reentrancy).
let weights = new Float64Array(0);

/**
 * A token drawn from distribution(logits, off, V, s, banned) with the uniform u, and its
 * probability: the same token and the same probability, bit for bit, as sample() on that
 * distribution, without its two extra passes over the vocabulary. With no top-k / top-p cut it
 * keeps the unnormalised weights and divides by their sum only while the inverse-CDF walk runs
 * (the same divisions, in the same order, stopping at the token drawn); greedy is the arg max.
 * The probability is in `drawn.prob` (no object per draw: this runs once per masked position).
 */
export function draw(logits: Float32Array, off: number, V: number, s: Shaping, banned: number | null, u: number): number {
  if (s.temperature !== 0 && ((s.topK > 0 && s.topK < V) || s.topP < 1)) {
    if (weights.length !== V) weights = new Float64Array(V);
    const p = distribution(logits, off, V, s, banned, weights);
    const tok = sample(p, u);
    drawn.prob = p[tok]!;
    return tok;
  }
  const arg = argMax(logits, off, V, banned);
  const max = arg < 0 ? -Infinity : logits[off + arg]!;
  if (s.temperature === 0) {
    drawn.prob = 1;
    return Math.max(arg, 0);
  }
  const sum = expRowSum(logits, off, V, max, 1 / s.temperature, banned);
  const e = rowWeights();
  let acc = 0;
  let last = 0;
  for (let v = 0; v < V; v++) {
    const q = e[v]! / sum;
    if (q <= 0) continue;
    acc += q;
    last = v;
    if (u < acc) { drawn.prob = q; return v; }
  }
  drawn.prob = e[last]! / sum;
  return last;
}

/** The probability of the token the last draw() returned. */
export const drawn = { prob: 0 };

/** Inverse-CDF draw with a uniform u in [0, 1). */
export function sample(p: Float64Array, u: number): number {
  let acc = 0;
  let last = 0;
  for (let v = 0; v < p.length; v++) {
    const q = p[v]!;
    if (q <= 0) continue;
    acc += q;
    last = v;
    if (u < acc) return v;
  }
  return last; // rounding: u landed past the accumulated mass
}
