// Frames waiting for a slow WebSocket reader. Queued frames coalesce, so that what a slow
// reader costs us is bounded by what it has not yet seen, not by how often we had news:
// consecutive deltas of one generation merge into one, and a generation's `step` canvas
// replaces the one still queued (a canvas is a snapshot; only the newest matters). A frame may
// carry a callback for when it has been handed to the socket (or can never be: the socket
// closed), so that a shutdown drain waits for a generation's `done` to leave the queue, not
// only to enter it.
import type { StepMsg } from '../engine/protocol.js';

export type OutFrame =
  | { type: 'delta'; id: string; text: string; tokens: number[] }
  | ({ type: 'step' } & Omit<StepMsg, 'type' | 'id' | 'drafts'> & { id: string; canvas_text?: (string | null)[] } & DraftFields)
  | { type: 'done'; id: string; finish_reason: string; stop_reason: string | null; usage: unknown }
  | { type: 'error'; id: string | null; code: string; message: string; param: string | null; retry_after?: number };

/** stream_drafts: each masked position's proposal (null at the others), as ids and as text. */
export interface DraftFields {
  drafts?: (number | null)[];
  drafts_text?: (string | null)[];
}

const textBytes = (texts: (string | null)[] | undefined): number => texts?.reduce((n, t) => n + (t === null ? 4 : t.length * 3 + 3), 0) ?? 0;

/** An upper estimate of a frame's encoded size (JSON of UTF-16 text, ids up to 9 bytes). */
export function frameBytes(f: OutFrame): number {
  if (f.type === 'delta') return f.text.length * 3 + f.tokens.length * 9 + 64;
  if (f.type === 'step') return f.canvas.length * 10 + textBytes(f.canvas_text) + (f.drafts?.length ?? 0) * 9 + textBytes(f.drafts_text) + 64;
  if (f.type === 'error') return f.message.length * 3 + 128;
  return 256;
}

export class OutboundQueue {
  private frames: OutFrame[] = [];
  private readonly sent = new Map<OutFrame, () => void>();
  /** Estimated bytes queued. */
  bytes = 0;

  get length(): number {
    return this.frames.length;
  }

  push(f: OutFrame, onSent?: () => void): void {
    if (onSent) this.sent.set(f, onSent);
    const last = this.frames[this.frames.length - 1];
    if (f.type === 'delta' && last?.type === 'delta' && last.id === f.id) {
      this.bytes -= frameBytes(last);
      last.text += f.text;
      last.tokens = last.tokens.concat(f.tokens);
      this.bytes += frameBytes(last);
      return;
    }
    if (f.type === 'step') {
      const i = this.frames.findIndex((q) => q.type === 'step' && q.id === f.id);
      if (i !== -1) {
        this.bytes -= frameBytes(this.frames[i]!);
        this.frames.splice(i, 1);
      }
    }
    this.frames.push(f);
    this.bytes += frameBytes(f);
  }

  /** The next frame; its callback runs after `send` hands it on. */
  shift(send: (f: OutFrame) => void): boolean {
    const f = this.frames.shift();
    if (!f) return false;
    this.bytes -= frameBytes(f);
    send(f);
    this.settle(f);
    return true;
  }

  /** Drops every frame (the socket closed); their callbacks run, since nothing will be sent. */
  clear(): void {
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    for (const f of frames) this.settle(f);
  }

  private settle(f: OutFrame): void {
    const cb = this.sent.get(f);
    if (cb) {
      this.sent.delete(f);
      cb();
    }
  }
}
