// The chat page's logic that needs no browser: how a canvas step is read and classified,
// the numbers under a reply, and the reconnect backoff. The page ships these as plain ES
// modules (server/public/), so the test loads the very files the browser loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';

type CellState = 'masked' | 'new' | 'revised' | 'remasked' | 'kept';
interface Slot { id: number | null; text: string | null }
interface StepView {
  step: number;
  offset: number;
  cells: { pos: number; text: string | null; state: CellState; changes: number; provisional: boolean; draft: string | null }[];
  counts: Record<CellState, number>;
}
interface CanvasModule {
  readStep(frame: Record<string, unknown>, maskId: number | null): { step: number; offset: number; slots: Slot[]; marks?: string; drafts?: (string | null)[] };
  CanvasTracker: new () => { apply(step: { step: number; offset: number; slots: Slot[]; marks?: string; drafts?: (string | null)[] }): StepView };
}
interface StatsModule {
  readUsage(u: unknown): { promptTokens: number | null; completionTokens: number | null; nfe: number | null; cachedTokens: number | null };
  replyStats(t: {
    startedAt: number; firstBlockAt: number | null; doneAt: number; tokensSeen: number;
    usage: ReturnType<StatsModule['readUsage']>;
  }): { tokens: number; tokensPerSecond: number | null; nfe: number | null; firstBlockMs: number | null; tokensPerNfe: number | null };
  formatStats(s: ReturnType<StatsModule['replyStats']>): string;
}
interface ConnectionModule {
  backoffDelay(attempt: number, minDelayMs: number, maxDelayMs: number, r: number): number;
}

const pub = new URL('../../server/public/', import.meta.url);
const canvas = (await import(new URL('canvas.js', pub).href)) as CanvasModule;
const stats = (await import(new URL('stats.js', pub).href)) as StatsModule;
const connection = (await import(new URL('connection.js', pub).href)) as ConnectionModule;

const MASK = 99;
const frame = (step: number, offset: number, ids: number[]) => ({ type: 'step', id: 'a', step, offset, canvas: ids });
const states = (v: StepView) => v.cells.map((c) => c.state);

test('canvas: masked, unmasked this step, kept', () => {
  const t = new canvas.CanvasTracker();
  const v1 = t.apply(canvas.readStep(frame(1, 0, [MASK, MASK, MASK]), MASK));
  assert.deepEqual(states(v1), ['masked', 'masked', 'masked']);
  const v2 = t.apply(canvas.readStep(frame(2, 0, [5, MASK, 7]), MASK));
  assert.deepEqual(states(v2), ['new', 'masked', 'new']);
  assert.equal(v2.cells[0].text, '#5', 'a token without decoded text shows its id');
  const v3 = t.apply(canvas.readStep(frame(3, 0, [5, 6, 7]), MASK));
  assert.deepEqual(states(v3), ['kept', 'new', 'kept']);
  assert.deepEqual(v3.counts, { masked: 0, new: 1, revised: 0, remasked: 0, kept: 2 });
});

test('canvas: replaced and masked-again tokens are told apart and counted per position', () => {
  const t = new canvas.CanvasTracker();
  t.apply(canvas.readStep(frame(1, 0, [5, 6, 7]), MASK));
  const v = t.apply(canvas.readStep(frame(2, 0, [5, 8, MASK]), MASK));
  assert.deepEqual(states(v), ['kept', 'revised', 'remasked']);
  const w = t.apply(canvas.readStep(frame(3, 0, [5, 8, 7]), MASK));
  assert.deepEqual(states(w), ['kept', 'kept', 'new']);
  assert.deepEqual(w.cells.map((c) => c.changes), [0, 1, 1], 'a settled token remembers it was changed');
});

test('canvas: positions are absolute, so a sliding window keeps each token history', () => {
  const t = new canvas.CanvasTracker();
  t.apply(canvas.readStep(frame(1, 0, [1, 2, 3, 4]), MASK));
  const v = t.apply(canvas.readStep(frame(2, 2, [3, 9, MASK, MASK]), MASK));
  assert.deepEqual(v.cells.map((c) => c.pos), [2, 3, 4, 5]);
  assert.deepEqual(states(v), ['kept', 'revised', 'masked', 'masked']);
});

test('canvas: decoded text, the frame mask id, and string canvases', () => {
  const withText = canvas.readStep(
    { step: 4, offset: 8, canvas: [3, 42], canvas_text: [' hi', null], mask_id: 42 },
    null,
  );
  assert.deepEqual(withText, { step: 4, offset: 8, slots: [{ id: 3, text: ' hi' }, { id: 42, text: null }] });
  // canvas_text null marks a masked position even when the page does not know the mask id.
  const nullText = canvas.readStep({ step: 1, offset: 0, canvas: [7, 8, 1], canvas_text: [' a', null, ''] }, null);
  assert.deepEqual(nullText.slots, [{ id: 7, text: ' a' }, { id: 8, text: null }, { id: 1, text: '' }]);
  // marks: 'p' positions may still change (Duo, ReMDM); 'f' ones are final.
  const marked = new canvas.CanvasTracker().apply(canvas.readStep({ step: 1, offset: 0, canvas: [7, 8, 42], marks: 'pfm' }, 42));
  assert.deepEqual(marked.cells.map((c) => c.provisional), [true, false, false]);
  // drafts_text: a masked position's proposal, shown in its cell; decoded ones have none.
  const drafted = new canvas.CanvasTracker().apply(canvas.readStep({ step: 1, offset: 0, canvas: [7, 42], canvas_text: [' a', null], drafts_text: [null, ' b'], marks: 'fm' }, 42));
  assert.deepEqual(drafted.cells.map((c) => c.draft), [null, ' b']);
  const strings = canvas.readStep({ step: 1, canvas: ['a', null] }, null);
  assert.deepEqual(strings.slots, [{ id: null, text: 'a' }, { id: null, text: null }]);
  // Same string, no ids: compared by text.
  const t = new canvas.CanvasTracker();
  t.apply(strings);
  assert.deepEqual(states(t.apply(canvas.readStep({ step: 2, canvas: ['b', 'c'] }, null))), ['revised', 'new']);
});

test('stats: tokens/s, NFE and time to first block from a done frame', () => {
  const usage = stats.readUsage({ prompt_tokens: 4, completion_tokens: 32, total_tokens: 36, nfe: 8, prompt_tokens_details: { cached_tokens: 2 } });
  assert.deepEqual(usage, { promptTokens: 4, completionTokens: 32, nfe: 8, cachedTokens: 2 });
  const s = stats.replyStats({ startedAt: 1000, firstBlockAt: 1250, doneAt: 3000, tokensSeen: 30, usage });
  assert.deepEqual(s, { tokens: 32, tokensPerSecond: 16, nfe: 8, firstBlockMs: 250, tokensPerNfe: 4 });
  assert.equal(stats.formatStats(s), '32 tokens · 16.0 tok/s · 8 NFE · 4.00 tok/NFE · first block 250 ms');
  // Without usage the page counts what it saw and says what it does not know.
  const bare = stats.replyStats({ startedAt: 0, firstBlockAt: null, doneAt: 500, tokensSeen: 5, usage: stats.readUsage(undefined) });
  assert.equal(stats.formatStats(bare), '5 tokens · 10.0 tok/s · NFE – · first block –');
});

test('reconnect backoff doubles, caps, and is spread by jitter', () => {
  const d = (a: number, r: number) => connection.backoffDelay(a, 250, 8000, r);
  assert.deepEqual([1, 2, 3, 4].map((a) => d(a, 0.999999)), [250, 500, 1000, 2000]);
  assert.equal(d(20, 0.999999), 8000);
  assert.equal(d(1, 0), 125, 'jitter halves at most');
  assert.equal(d(0, 0.5), 188);
});
