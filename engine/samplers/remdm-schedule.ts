// ReMDM's remasking schedules for masked models: how much probability sigma a decoded
// token gets of going back to [MASK] at each step. sigma = 0 is plain MDLM ancestral
// sampling; remasking lets later steps revise early mistakes, buying quality with steps.
// The four schedules follow the ReMDM paper (Wang et al., 2025): cap, rescale, conf, loop.
import { REMASKING_SCHEDULES, type RemaskingParams, type RemaskingSchedule } from '../protocol.js';
import { logLinearAlpha } from './duo-posterior.js';

export { REMASKING_SCHEDULES, type RemaskingSchedule };

// The request's field names (snake_case) for RemaskingParams' keys.
const FIELD = { schedule: 'schedule', eta: 'eta', tOn: 't_on', tOff: 't_off', alphaOn: 'alpha_on' } as const;

/**
 * A remasking setting out of range. The message names RemaskingParams' key; `param` is the
 * request's field (`remasking.t_on`) and `detail` the reason, for the 400 that names it.
 */
export class RemaskingError extends RangeError {
  readonly param: string;
  constructor(key: keyof typeof FIELD, readonly detail: string) {
    super(`remasking.${key}: ${detail}`);
    this.param = `remasking.${FIELD[key]}`;
  }
}

/** ReMDM's published settings (OpenWebText, 1024 steps); a request may override each one. */
export const REMASKING_DEFAULTS: Record<RemaskingSchedule, Required<Omit<RemaskingParams, 'schedule'>>> = {
  cap: { eta: 0.008, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 },
  rescale: { eta: 0.015, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 },
  conf: { eta: 1, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 },
  loop: { eta: 0.02, tOn: 0.55, tOff: 0.05, alphaOn: 0.9 },
};

/** What a request may send: the schedule, and any of its parameters. */
export type RemaskingRequest = Partial<RemaskingParams> & Pick<RemaskingParams, 'schedule'>;

/** Fill in a schedule's defaults and check ranges; throws RemaskingError naming the field. */
export function resolveRemasking(p: RemaskingRequest): Required<RemaskingParams> {
  if (!(REMASKING_SCHEDULES as readonly string[]).includes(p.schedule)) {
    throw new RemaskingError('schedule', `must be one of ${REMASKING_SCHEDULES.join(', ')}, got ${String(p.schedule)}`);
  }
  const r = { schedule: p.schedule, ...REMASKING_DEFAULTS[p.schedule] };
  for (const k of ['eta', 'tOn', 'tOff', 'alphaOn'] as const) {
    const v = p[k];
    if (v !== undefined) r[k] = v;
  }
  const inUnit = (k: 'eta' | 'tOn' | 'tOff' | 'alphaOn', lo: number, hi: number, open: boolean): void => {
    const v = r[k];
    const ok = Number.isFinite(v) && (open ? v > lo && v < hi : v >= lo && v <= hi);
    if (!ok) throw new RemaskingError(k, `must be in ${open ? '(' : '['}${lo}, ${hi}${open ? ')' : ']'}, got ${v}`);
  };
  inUnit('eta', 0, 1, false);
  if (r.schedule === 'loop') {
    inUnit('tOn', 0, 1, true);
    inUnit('tOff', 0, 1, true);
    inUnit('alphaOn', 0, 1, true);
    if (!(r.tOff < r.tOn)) throw new RemaskingError('tOff', `must be below t_on (${r.tOn}), got ${r.tOff}`);
  }
  return r;
}

/** Largest sigma that keeps the reverse step a distribution: min(1, (1 - alpha_s)/alpha_t). */
export function sigmaMax(alphaS: number, alphaT: number): number {
  return alphaT > 0 ? Math.min(1, (1 - alphaS) / alphaT) : 1;
}

/**
 * The loop schedule's alpha(t): MDLM from alpha = 0 at t = 1 up to alphaOn at tOn, held at
 * alphaOn while remasking loops over the tokens, then MDLM again from tOff to alpha = 1.
 */
export function loopAlpha(t: number, r: Required<RemaskingParams>): number {
  if (t > r.tOn) return ((1 - t) * r.alphaOn) / (1 - r.tOn);
  if (t > r.tOff) return r.alphaOn;
  return r.alphaOn + ((1 - r.alphaOn) * (r.tOff - t)) / r.tOff;
}

/** One step of a masked model's schedule with remasking. */
export interface RemdmStepPlan {
  alphaT: number;
  alphaS: number;
  /** Remasking probability of a decoded token; ignored for 'conf', which uses per-token weights. */
  sigma: number;
  /** sigma's bound at this step (the 'conf' schedule scales its weights by it). */
  sigmaMax: number;
  /** Weighted by confidence (the 'conf' schedule). */
  byConfidence: boolean;
  /** Network time input alpha (kept above eps so that -log alpha stays finite). */
  alphaForSigma: number;
}

/**
 * Times at which the network is called: t_k = 1 - k/steps, stepping to t_{k+1}; the last
 * step lands on t = 0 (alpha = 1), where every schedule's sigma bound is zero, so the canvas
 * ends with no [MASK] left and no extra call.
 */
export function remdmPlan(k: number, steps: number, eps: number, r: Required<RemaskingParams>): RemdmStepPlan {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (!(k >= 0 && k < steps)) throw new RangeError(`step ${k} is outside 0..${steps - 1}`);
  const t = 1 - k / steps;
  const s = 1 - (k + 1) / steps;
  let alphaT: number;
  let alphaS: number;
  if (r.schedule === 'loop') {
    alphaT = loopAlpha(t, r);
    alphaS = loopAlpha(s, r);
  } else {
    alphaT = logLinearAlpha(t, eps);
    alphaS = k === steps - 1 ? 1 : logLinearAlpha(s, eps);
  }
  const bound = sigmaMax(alphaS, alphaT);
  let sigma = 0;
  switch (r.schedule) {
    case 'cap':
      sigma = Math.min(r.eta, bound);
      break;
    case 'rescale':
      sigma = r.eta * bound;
      break;
    case 'conf':
      sigma = 0;
      break;
    case 'loop':
      sigma = t > r.tOff && t <= r.tOn ? Math.min(r.eta, bound) : 0;
      break;
  }
  return { alphaT, alphaS, sigma, sigmaMax: bound, byConfidence: r.schedule === 'conf', alphaForSigma: Math.max(alphaT, eps) };
}
