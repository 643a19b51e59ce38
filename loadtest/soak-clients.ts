// The clients of a soak: one request at a time per worker, JSON, SSE or WebSocket in turn, some
// of them walking away midway (a closed connection, a cancel, a closed socket). Every request
// ends in the ledger as answered, left by us, refused or failed with an error, or lost: the
// server accepted it and then never answered (a connection ended under it, no `done`, no
// answer within the time limit). A soak passes only with none lost.
import WebSocket from 'ws';

export interface Ledger {
  started: number;
  byKind: Record<Kind, number>;
  /** Answered in full (200 with a finish reason, [DONE], `done`). */
  answered: number;
  /** Ended by the client on purpose: a dropped connection or a closed socket. */
  disconnected: number;
  /** WebSocket cancels that got their `done`. */
  cancelled: number;
  errors: number;
  lost: number;
  /** The first few errors and losses, for the report. */
  notes: string[];
}

export type Kind = 'json' | 'sse' | 'ws';

export function newLedger(): Ledger {
  return { started: 0, byKind: { json: 0, sse: 0, ws: 0 }, answered: 0, disconnected: 0, cancelled: 0, errors: 0, lost: 0, notes: [] };
}


function note(l: Ledger, what: 'errors' | 'lost', text: string): void {
  l[what]++;
  if (l.notes.length < 20) l.notes.push(`${what === 'lost' ? 'LOST' : 'error'}: ${text}`);
}

/** The n-th request's body: a few prompts and lengths in turn, so that every shape shows up early. */
function body(n: number): Record<string, unknown> {
  const prompts = ['The king', 'Once upon a time', 'In the morning the', 'She said that'];
  return { prompt: prompts[n % prompts.length], max_tokens: [16, 32, 48, 64][(n >> 2) % 4], seed: n };
}

/** One worker: a WebSocket of its own (reopened after it closes it) and one request at a time. */
export class SoakWorker {
  private ws: WebSocket | null = null;
  private readonly handlers = new Map<string, (f: Record<string, unknown> | null) => void>();

  constructor(
    private readonly base: string,
    private readonly ledger: Ledger,
    /** A request unanswered for this long counts as lost. */
    private readonly answerTimeoutMs: number,
  ) {}

  async run(n: number): Promise<void> {
    const kind: Kind = (['json', 'sse', 'ws'] as const)[n % 3]!;
    this.ledger.started++;
    this.ledger.byKind[kind]++;
    const k = Math.floor(n / 3);
    if (kind === 'json') await this.json(n, k % 9 === 4);
    else if (kind === 'sse') await this.sse(n, k % 7 === 3);
    else await this.wsGenerate(n, k % 5 === 2 ? 'cancel' : k % 11 === 7 ? 'close' : 'none');
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }

  private async json(n: number, leave: boolean): Promise<void> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new Error('timeout')), leave ? 30 : this.answerTimeoutMs);
    const path = n % 2 === 0 ? '/v1/completions' : '/v1/chat/completions';
    const b = body(n);
    const payload = path === '/v1/completions' ? b : { ...b, prompt: undefined, messages: [{ role: 'user', content: b.prompt }] };
    try {
      const r = await fetch(`${this.base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload), signal: ctl.signal });
      const j = (await r.json()) as { choices?: { finish_reason?: string }[]; error?: { code?: string } };
      if (r.status === 200 && j.choices?.every((c) => c.finish_reason === 'length' || c.finish_reason === 'stop')) this.ledger.answered++;
      else note(this.ledger, 'errors', `json ${n}: ${r.status} ${j.error?.code ?? JSON.stringify(j).slice(0, 120)}`);
    } catch (err) {
      if (leave && ctl.signal.aborted) this.ledger.disconnected++;
      else note(this.ledger, 'lost', `json ${n}: ${ctl.signal.aborted ? 'no answer in time' : (err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async sse(n: number, leave: boolean): Promise<void> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new Error('timeout')), this.answerTimeoutMs);
    let left = false;
    try {
      const r = await fetch(`${this.base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body(n), stream: true }), signal: ctl.signal });
      if (r.status !== 200) {
        note(this.ledger, 'errors', `sse ${n}: ${r.status} ${await r.text()}`);
        return;
      }
      let raw = '';
      const decoder = new TextDecoder();
      for await (const chunk of r.body!) {
        raw += decoder.decode(chunk as Uint8Array, { stream: true });
        if (leave && raw.includes('data: {')) {
          left = true;
          ctl.abort(new Error('client leaves'));
          break;
        }
      }
      if (left) this.ledger.disconnected++;
      else if (raw.includes('"error":{')) note(this.ledger, 'errors', `sse ${n}: ${raw.slice(raw.indexOf('"error":{'), raw.indexOf('"error":{') + 160)}`);
      else if (raw.endsWith('data: [DONE]\n\n')) this.ledger.answered++;
      else note(this.ledger, 'lost', `sse ${n}: the stream ended without [DONE]`);
    } catch (err) {
      if (left) this.ledger.disconnected++;
      else note(this.ledger, 'lost', `sse ${n}: ${ctl.signal.aborted ? 'no answer in time' : (err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async socket(): Promise<WebSocket> {
    if (this.ws !== null && this.ws.readyState === WebSocket.OPEN) return this.ws;
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/v1/ws`);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    // A failed socket also closes, and the close handler below speaks for it.
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      this.handlers.get(String(f.id))?.(f);
    });
    ws.on('close', () => {
      // Whatever still waits on this socket will never hear back.
      for (const h of [...this.handlers.values()]) h(null);
    });
    this.ws = ws;
    return ws;
  }

  private async wsGenerate(n: number, leave: 'none' | 'cancel' | 'close'): Promise<void> {
    let ws: WebSocket;
    try {
      ws = await this.socket();
    } catch (err) {
      note(this.ledger, 'errors', `ws ${n}: could not connect: ${(err as Error).message}`);
      return;
    }
    const id = `g${n}`;
    await new Promise<void>((resolve) => {
      let acted = false;
      const finish = (): void => {
        clearTimeout(timer);
        this.handlers.delete(id);
        resolve();
      };
      const timer = setTimeout(() => {
        note(this.ledger, 'lost', `ws ${n}: no done in time`);
        finish();
      }, this.answerTimeoutMs);
      this.handlers.set(id, (f) => {
        if (f === null) {
          if (leave === 'close' && acted) this.ledger.disconnected++;
          else note(this.ledger, 'lost', `ws ${n}: the socket closed before done`);
          finish();
          return;
        }
        if (f.type === 'delta' && !acted && leave !== 'none') {
          acted = true;
          if (leave === 'cancel') ws.send(JSON.stringify({ type: 'cancel', id }));
          else {
            this.ws = null;
            ws.close();
          }
        } else if (f.type === 'error') {
          note(this.ledger, 'errors', `ws ${n}: ${String(f.code)} ${String(f.message)}`);
        } else if (f.type === 'done') {
          if (f.finish_reason === 'cancelled') this.ledger.cancelled++;
          else if (f.finish_reason !== 'error') this.ledger.answered++;
          finish();
        }
      });
      ws.send(JSON.stringify({ type: 'generate', id, prompt: body(n).prompt, settings: { max_tokens: body(n).max_tokens, seed: n } }));
    });
  }
}
