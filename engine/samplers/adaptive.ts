// Adaptive parallel decoding for masked diffusion: how many of the proposed tokens one network
// call may commit. Each rule is a pure function of the proposals (a token and its scores per
// masked position) and always commits at least one, so every call makes progress.
//
// - threshold (Fast-dLLM): every proposal whose confidence reaches tau.
// - factor (Fast-dLLM's factor rule): with confidences sorted c_(1) >= c_(2) >= ..., the largest n
//   with (n + 1) * (1 - c_(n)) < f. Their theorem: if (n + 1) * eps <= 1 for the n tokens kept
//   (eps = 1 - their lowest confidence), greedy parallel decoding of them equals greedy
//   sequential decoding; f scales that bound.
// - entropy bound (EB-sampler, Ben-Hamu et al. 2025): positions in order of increasing entropy,
//   the largest k with sum_{i<=k} H_i - max_{i<=k} H_i <= gamma. The left side bounds the mutual
//   information among the k committed tokens, i.e. the error of drawing them independently.
//
// Scores come from the model's own distribution: at temperature 0 the drawn token is the arg max
// and its confidence and entropy are those of the unshaped softmax (a one-hot would score every
// position fully certain and commit the whole window in one call).
import type { Rng } from '../rng.js';
import { distribution, sample, type Shaping } from './categorical.js';
import { maskedPositions, type MaskedStep } from './masked.js';

export interface Proposal {
  pos: number;
  tok: number;
  /** Probability of `tok`. */
  conf: number;
  /** Entropy of the position's distribution, in nats. */
  entropy: number;
}

const UNSHAPED: Shaping = { temperature: 1, topK: 0, topP: 1 };

export function entropyOf(p: Float64Array): number {
  let h = 0;
  for (const q of p) if (q > 0) h -= q * Math.log(q);
  return h;
}

/**
 * One proposal per position of `positions` (rows of `logits`, [rows, V]), drawing each token with
 * one uniform from `rng` in the order given, whatever the temperature, so that rules and cache
 * modes that score the same logits consume the RNG alike.
 */
export function propose(logits: Float32Array, V: number, positions: readonly number[], shaping: Shaping,
  banned: number | null, rng: Rng): Proposal[] {
  const p = new Float64Array(V);
  const q = new Float64Array(V);
  const out: Proposal[] = [];
  for (const pos of positions) {
    distribution(logits, pos * V, V, shaping, banned, p);
    const tok = sample(p, rng.next());
    const scored = shaping.temperature === 0 ? distribution(logits, pos * V, V, UNSHAPED, banned, q) : p;
    out.push({ pos, tok, conf: scored[tok]!, entropy: entropyOf(scored) });
  }
  return out;
}

function byConfidence(props: readonly Proposal[]): Proposal[] {
  return [...props].sort((a, b) => b.conf - a.conf || a.pos - b.pos);
}

/** Fast-dLLM's threshold: every proposal with conf >= tau, else the most confident one. */
export function selectThreshold(props: readonly Proposal[], tau: number): Proposal[] {
  if (props.length === 0) return [];
  const kept = props.filter((p) => p.conf >= tau);
  return kept.length > 0 ? kept : byConfidence(props).slice(0, 1);
}

/** How many of the confidences (sorted descending) the factor rule keeps: at least 1. */
export function factorCount(sortedConf: readonly number[], factor: number): number {
  let n = 1;
  for (let k = 2; k <= sortedConf.length; k++) {
    if ((k + 1) * (1 - sortedConf[k - 1]!) < factor) n = k;
    else break; // the left side only grows with k
  }
  return Math.min(n, sortedConf.length);
}

/** Fast-dLLM's factor rule: the n most confident proposals, n = factorCount. */
export function selectFactor(props: readonly Proposal[], factor: number): Proposal[] {
  const sorted = byConfidence(props);
  return sorted.slice(0, factorCount(sorted.map((p) => p.conf), factor));
}

/**
 * How many of the entropies (sorted ascending) the EB rule keeps: at least 1. The first k sum to
 * S_k and their max is h_k, so the bound S_k - h_k = S_(k-1) <= gamma only tightens with k.
 */
export function entropyBoundedCount(sortedEntropy: readonly number[], gamma: number): number {
  if (sortedEntropy.length === 0) return 0;
  let n = 1;
  let before = sortedEntropy[0]!; // S_(k-1) for the next k
  for (let k = 2; k <= sortedEntropy.length; k++) {
    if (before > gamma) break;
    n = k;
    before += sortedEntropy[k - 1]!;
  }
  return n;
}

/** EB-sampler: the lowest-entropy proposals whose entropies, less the largest, sum to <= gamma. */
export function selectEntropyBounded(props: readonly Proposal[], gamma: number): Proposal[] {
  const sorted = [...props].sort((a, b) => a.entropy - b.entropy || b.conf - a.conf || a.pos - b.pos);
  if (sorted.length === 0) return [];
  return sorted.slice(0, entropyBoundedCount(sorted.map((p) => p.entropy), gamma));
}

function commit(x: MaskedStep, chosen: readonly Proposal[]): number {
  for (const c of chosen) x.canvas[c.pos] = c.tok;
  return chosen.length;
}

/** One EB-sampler step over the canvas's masked positions; returns how many it unmasked. */
export function entropyBoundedStep(x: MaskedStep, gamma: number): number {
  const props = propose(x.logits, x.V, maskedPositions(x.canvas, x.maskId), x.shaping, x.maskId, x.rng);
  return commit(x, selectEntropyBounded(props, gamma));
}

/** One factor-rule step over the canvas's masked positions; returns how many it unmasked. */
export function factorStep(x: MaskedStep, factor: number): number {
  const props = propose(x.logits, x.V, maskedPositions(x.canvas, x.maskId), x.shaping, x.maskId, x.rng);
  return commit(x, selectFactor(props, factor));
}
