// @ts-check
// What a denoising step did to the canvas, position by position, so that a person can follow
// it: which positions are still masked, which were unmasked by this step, which tokens were
// replaced by another (Duo, ReMDM) and which were masked again (ReMDM). Pure functions over
// `step` frames; the page renders their result and the tests check it without a browser.

/**
 * @typedef {{ id: number | null, text: string | null }} Slot
 *   One canvas position: `text` null means masked. `id` is the token id when the frame has one.
 * @typedef {'masked' | 'new' | 'revised' | 'remasked' | 'kept'} CellState
 * @typedef {{ pos: number, text: string | null, state: CellState, changes: number, provisional: boolean, draft: string | null }} Cell
 *   `pos` counts generated tokens from the start of the reply; `changes` is how many times
 *   the token at `pos` was replaced or masked again so far; `provisional`: the frame's `marks`
 *   say a later step may still change this token (Duo, ReMDM), where 'final' ones never change;
 *   `draft`: the text of the model's proposal for a masked position (the frame's `drafts_text`).
 * @typedef {{ step: number, offset: number, cells: Cell[], counts: Record<CellState, number> }} StepView
 */

/**
 * Reads one position of a `step` frame's canvas. The protocol gives token ids, and beside them
 * `canvas_text`, the text of each position with null where masked; without it, a position is
 * masked when its id is the mask id, and a token shows as its id. A canvas of strings (null
 * where masked) is read too. Anything else is treated as masked rather than guessed.
 * @param {unknown} entry
 * @param {unknown} text this position's `canvas_text` entry; undefined when the frame has none
 * @param {number | null} maskId
 * @returns {Slot}
 */
export function readSlot(entry, text, maskId) {
  if (entry === null || entry === undefined) return { id: null, text: null };
  if (typeof entry === 'string') return { id: null, text: entry };
  if (typeof entry === 'number') {
    if (text === null || (maskId !== null && entry === maskId)) return { id: entry, text: null };
    return { id: entry, text: typeof text === 'string' ? text : `#${entry}` };
  }
  return { id: null, text: null };
}

/**
 * The slots of a `step` frame.
 * @param {Record<string, unknown>} frame
 * @param {number | null} maskId the model's mask id when the frame does not carry one
 * @returns {{ step: number, offset: number, slots: Slot[], marks?: string, drafts?: (string | null)[] }}
 */
export function readStep(frame, maskId) {
  const canvas = Array.isArray(frame.canvas) ? frame.canvas : [];
  const texts = Array.isArray(frame.canvas_text) ? frame.canvas_text : null;
  const mask = typeof frame.mask_id === 'number' ? frame.mask_id : maskId;
  return {
    step: typeof frame.step === 'number' ? frame.step : 0,
    offset: typeof frame.offset === 'number' ? frame.offset : 0,
    slots: canvas.map((entry, i) => readSlot(entry, texts === null ? undefined : texts[i], mask)),
    ...(typeof frame.marks === 'string' ? { marks: frame.marks } : {}),
    ...(Array.isArray(frame.drafts_text) ? { drafts: frame.drafts_text.map((t) => (typeof t === 'string' ? t : null)) } : {}),
  };
}

/** @param {Slot} slot */
function keyOf(slot) {
  if (slot.text === null) return null;
  return slot.id !== null ? `i${slot.id}` : `t${slot.text}`;
}

/**
 * Follows one reply's canvas across steps. Positions are absolute (offset + index), so a
 * window that slides or a block that commits keeps each token's history.
 */
export class CanvasTracker {
  constructor() {
    /** @type {Map<number, string | null>} */
    this.last = new Map();
    /** @type {Map<number, number>} */
    this.changes = new Map();
  }

  /**
   * @param {{ step: number, offset: number, slots: Slot[], marks?: string, drafts?: (string | null)[] }} step
   * @returns {StepView}
   */
  apply(step) {
    /** @type {Record<CellState, number>} */
    const counts = { masked: 0, new: 0, revised: 0, remasked: 0, kept: 0 };
    const cells = step.slots.map((slot, i) => {
      const pos = step.offset + i;
      const key = keyOf(slot);
      const seen = this.last.has(pos);
      const before = seen ? this.last.get(pos) ?? null : null;
      /** @type {CellState} */
      let state;
      if (key === null) state = before !== null ? 'remasked' : 'masked';
      else if (before === null) state = 'new';
      else state = before === key ? 'kept' : 'revised';
      if (state === 'revised' || state === 'remasked') this.changes.set(pos, (this.changes.get(pos) ?? 0) + 1);
      this.last.set(pos, key);
      counts[state] += 1;
      return { pos, text: slot.text, state, changes: this.changes.get(pos) ?? 0, provisional: step.marks?.[i] === 'p', draft: slot.text === null ? step.drafts?.[i] ?? null : null };
    });
    return { step: step.step, offset: step.offset, cells, counts };
  }
}
