// Turning one position's logits into a distribution over tokens, and drawing from it.
// Work is in float64: after temperature and nucleus cuts the tail probabilities are tiny.
import { truncate } from './nucleus.js';

export interface Shaping {
  /** 0 = greedy (arg max). */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
}

/**
 * Normalised probabilities of one row of logits, with `banned` ids (such as [MASK], which SUBS
 * never predicts) at zero, then temperature, top-k and top-p. Temperature 0 puts all mass on
 * the arg max.
 */
export function distribution(logits: Float32Array, off: number, V: number, s: Shaping, banned: number | null,
  out = new Float64Array(V)): Float64Array {
  let max = -Infinity;
  let arg = 0;
  for (let v = 0; v < V; v++) {
    if (v === banned) continue;
    const x = logits[off + v]!;
    if (x > max) { max = x; arg = v; }
  }
  if (s.temperature === 0) {
    out.fill(0);
    out[arg] = 1;
    return out;
  }
  const invT = 1 / s.temperature;
  let sum = 0;
  for (let v = 0; v < V; v++) {
    const p = v === banned ? 0 : Math.exp((logits[off + v]! - max) * invT);
    out[v] = p;
    sum += p;
  }
  for (let v = 0; v < V; v++) out[v]! /= sum;
  const k = s.topK > 0 && s.topK < V ? s.topK : V;
  if (k < V || s.topP < 1) truncate(out, k, s.topP);
  return out;
}

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
