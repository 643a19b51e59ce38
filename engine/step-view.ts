// What a `step` message says about each canvas position beside its token: whether it is final
// (no later step can change it), provisional (a later step may: Duo's uniform-noise tokens,
// ReMDM's while remasking can still hit them) or still masked; and, when the request asked for
// drafts, the model's current proposal (arg max) for each masked position, so that a client can
// render a draft of the text before it is decided. Marks are one character per position, so a
// frame grows by one byte a position in JSON and msgpack alike.
import type { StepMsg } from './protocol.js';

export const FINAL = 'f';
export const PROVISIONAL = 'p';
export const MASKED = 'm';

/** A step message without its envelope: what a sequence hands its sink. */
export type StepView = Omit<StepMsg, 'type' | 'id'>;

/** Marks of a canvas whose unmasked tokens are all final, or all provisional. */
export function marksOf(canvas: ArrayLike<number>, maskId: number | null, decodedFinal: boolean): string {
  const tok = decodedFinal ? FINAL : PROVISIONAL;
  let out = '';
  for (let i = 0; i < canvas.length; i++) out += canvas[i] === maskId ? MASKED : tok;
  return out;
}

/**
 * The arg max token (never the mask id) of each masked position's logits row, -1 at the others.
 * Row `rowStart + i` of `logits` ([rows, V]) belongs to canvas position i; a masked position
 * with no row there (the logits cover part of the canvas: kv_cache dual's sub-block) has no
 * proposal either: -1.
 */
export function draftsOf(canvas: ArrayLike<number>, maskId: number, logits: Float32Array, V: number, rowStart = 0): number[] {
  const out = new Array<number>(canvas.length).fill(-1);
  const rows = logits.length / V;
  for (let i = 0; i < canvas.length; i++) {
    if (canvas[i] !== maskId) continue;
    const row = rowStart + i;
    if (row < 0 || row >= rows) continue;
    const base = row * V;
    let best = -1;
    let bestLogit = -Infinity;
    for (let v = 0; v < V; v++) {
      if (v === maskId) continue;
      const l = logits[base + v]!;
      if (l > bestLogit || best < 0) { best = v; bestLogit = l; }
    }
    out[i] = best;
  }
  return out;
}

/** A step view of a masked canvas; drafts only when `draftLogits` is given. */
export function maskedStepView(
  step: number, offset: number, canvas: ArrayLike<number>, maskId: number, decodedFinal: boolean,
  draftLogits: { logits: Float32Array; V: number; rowStart?: number } | null,
): StepView {
  const view: StepView = { step, offset, canvas: Array.from(canvas), marks: marksOf(canvas, maskId, decodedFinal) };
  if (draftLogits) view.drafts = draftsOf(canvas, maskId, draftLogits.logits, draftLogits.V, draftLogits.rowStart ?? 0);
  return view;
}
