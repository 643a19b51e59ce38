// What every stream of step canvases must keep to, whoever produced it (a WebSocket client's
// frames, the engine's step messages): one mark per position, 'm' exactly where the canvas holds
// [MASK]; a position once marked final ('f') keeps its token and its mark in every later frame
// that shows it, and is what the sequence commits there. Returns how often a provisional
// position changed, so that a test can show that provisional ones do.
import assert from 'node:assert/strict';

export interface StepLike { step: number; offset: number; canvas: number[]; marks: string }

export function checkStepMarks(frames: readonly StepLike[], maskId: number | null, committed: readonly number[]): { finals: number; provisionalChanges: number } {
  const final = new Map<number, number>();
  const provisional = new Map<number, number>();
  let provisionalChanges = 0;
  for (const f of frames) {
    assert.equal(f.marks.length, f.canvas.length, `step ${f.step}: a mark per position`);
    assert.match(f.marks, /^[fpm]*$/, `step ${f.step}`);
    f.canvas.forEach((tok, i) => {
      const at = f.offset + i;
      const mark = f.marks[i]!;
      assert.equal(mark === 'm', tok === maskId, `step ${f.step}, position ${at}: marked '${mark}' over token ${tok}`);
      const was = final.get(at);
      if (was !== undefined) {
        assert.equal(mark, 'f', `step ${f.step}, position ${at}: final earlier, now '${mark}'`);
        assert.equal(tok, was, `step ${f.step}, position ${at}: final token ${was} became ${tok}`);
      }
      if (mark === 'f') final.set(at, tok);
      if (mark === 'p') {
        const before = provisional.get(at);
        if (before !== undefined && before !== tok) provisionalChanges++;
        provisional.set(at, tok);
      } else if (mark === 'm' && provisional.has(at)) {
        provisionalChanges++; // remasked
        provisional.delete(at);
      }
    });
  }
  for (const [at, tok] of final) if (at < committed.length) assert.equal(committed[at], tok, `position ${at}: final ${tok}, committed ${committed[at]}`);
  return { finals: final.size, provisionalChanges };
}
