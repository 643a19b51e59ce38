// Samplers for masked (absorbing-state) diffusion. Each one is a pure function of the window's
// canvas, the network's logits for the window, the step index and the sequence's RNG: it
// unmasks some positions in place and returns how many it changed.
//
// Schedule: MDLM's log-linear noise, alpha(t) = 1 - (1 - eps) t (the share of clean tokens), on
// a uniform grid t_i = 1 - i / steps. SUBS: [MASK] is never predicted, clean tokens stay.
import type { Rng } from '../rng.js';
import { draw, drawn, type Shaping } from './categorical.js';

export const MASKED_SAMPLERS = [
  'ddpm', 'ddpm_cache', 'first_hitting', 'confidence_topk', 'confidence_threshold',
  // The adaptive rules of engine/samplers/adaptive.ts: as many tokens per call as their bound allows.
  'confidence_factor', 'entropy_bound',
] as const;
export type MaskedSampler = (typeof MASKED_SAMPLERS)[number];

export function isMaskedSampler(name: string): name is MaskedSampler {
  return (MASKED_SAMPLERS as readonly string[]).includes(name);
}

export interface MaskedStep {
  canvas: Int32Array;
  maskId: number;
  /** Logits for the canvas rows, [canvas.length, V]. */
  logits: Float32Array;
  V: number;
  shaping: Shaping;
  rng: Rng;
  /** 0-based step index within the window and the steps planned for it. */
  step: number;
  steps: number;
  eps: number;
}

/** The canvas positions that still hold [MASK], in order. */
export function maskedPositions(canvas: Int32Array, maskId: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < canvas.length; j++) if (canvas[j] === maskId) out.push(j);
  return out;
}

export function maskedCount(canvas: Int32Array, maskId: number): number {
  let n = 0;
  for (const x of canvas) if (x === maskId) n++;
  return n;
}

/** alpha(t) of the log-linear schedule. */
export function alpha(t: number, eps: number): number {
  return 1 - (1 - eps) * t;
}

/**
 * Ancestral step t -> s (MDLM's ddpm): each masked position becomes a token with probability
 * (alpha_s - alpha_t) / (1 - alpha_t), drawn from p_theta(x0); the last step unmasks the rest.
 * RNG use per masked position: one draw for "moves", one more for the token if it moves, so
 * ddpm and ddpm_cache consume the RNG identically.
 */
export function ddpmStep(x: MaskedStep): number {
  const t = 1 - x.step / x.steps;
  const s = 1 - (x.step + 1) / x.steps;
  const aT = alpha(t, x.eps);
  const aS = alpha(s, x.eps);
  const pMove = x.step + 1 >= x.steps ? 1 : (aS - aT) / (1 - aT);
  let changed = 0;
  for (let j = 0; j < x.canvas.length; j++) {
    if (x.canvas[j] !== x.maskId) continue;
    if (x.rng.next() >= pMove) continue;
    x.canvas[j] = draw(x.logits, j * x.V, x.V, x.shaping, x.maskId, x.rng.next());
    changed++;
  }
  return changed;
}

/**
 * First-hitting (Zheng et al. 2024): the next unmasking event hits exactly one position, chosen
 * uniformly among the masked ones, so each network call decodes exactly one token. (Its time,
 * t * u^(1/n) for n masked positions, matters only to time-conditioned networks.)
 */
export function firstHittingStep(x: MaskedStep): number {
  const masked = maskedPositions(x.canvas, x.maskId);
  if (masked.length === 0) return 0;
  const j = masked[x.rng.int(masked.length)]!;
  x.canvas[j] = draw(x.logits, j * x.V, x.V, x.shaping, x.maskId, x.rng.next());
  return 1;
}

/** Draw a token and its probability for every masked position (LLaDA / Fast-dLLM proposals). */
function proposals(x: MaskedStep): { pos: number; tok: number; conf: number }[] {
  const out: { pos: number; tok: number; conf: number }[] = [];
  for (let j = 0; j < x.canvas.length; j++) {
    if (x.canvas[j] !== x.maskId) continue;
    const tok = draw(x.logits, j * x.V, x.V, x.shaping, x.maskId, x.rng.next());
    out.push({ pos: j, tok, conf: drawn.prob });
  }
  return out;
}

/**
 * Confidence top-k (LLaDA's low-confidence remasking): propose a token everywhere, keep the k
 * most confident, where k spreads the remaining masked positions evenly over the remaining steps.
 */
export function confidenceTopkStep(x: MaskedStep): number {
  const props = proposals(x);
  if (props.length === 0) return 0;
  const left = Math.max(1, x.steps - x.step);
  const k = Math.min(props.length, Math.ceil(props.length / left));
  props.sort((a, b) => b.conf - a.conf || a.pos - b.pos);
  for (let i = 0; i < k; i++) x.canvas[props[i]!.pos] = props[i]!.tok;
  return k;
}

/**
 * Confidence threshold (Fast-dLLM): unmask every proposal whose probability reaches the
 * threshold, and at least the most confident one, so each call makes progress.
 */
export function confidenceThresholdStep(x: MaskedStep, threshold: number): number {
  const props = proposals(x);
  if (props.length === 0) return 0;
  let best = props[0]!;
  let n = 0;
  for (const pr of props) {
    if (pr.conf > best.conf) best = pr;
    if (pr.conf >= threshold) { x.canvas[pr.pos] = pr.tok; n++; }
  }
  if (n === 0) { x.canvas[best.pos] = best.tok; n = 1; }
  return n;
}
