// WebSocket load: N sockets, each keeping M generations in flight (a new one starts as soon as
// one is done), for a fixed time; then whatever is still running is cancelled and awaited, so
// the server is idle when this returns. Concurrency is N x M (the last socket may hold fewer).
import WebSocket from 'ws';
import { summarize, type Sample, type ScenarioResult } from './report.js';

export interface WsLoadOptions {
  scenario: string;
  base: string;
  /** Generations in flight at once, over ceil(concurrency / perSocket) sockets. */
  concurrency: number;
  perSocket: number;
  /** Time limit; with `total`, only a safety net (what runs past it is cancelled). */
  seconds: number;
  /** Run exactly this many generations (closed loop) and time them, instead of a fixed time. */
  total?: number;
  /** The `generate` message of the n-th generation, without type and id. */
  generate(n: number): Record<string, unknown>;
}

interface Frame {
  type: string;
  id: string | null;
  tokens?: number[];
  usage?: { completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  finish_reason?: string;
  code?: string;
}

export async function wsLoad(o: WsLoadOptions): Promise<ScenarioResult> {
  const url = `${o.base.replace(/^http/, 'ws')}/v1/ws`;
  const samples: Sample[] = [];
  let errors = 0;
  let cached = 0;
  let windowTokens = 0;
  let n = 0;
  let liveCount = 0;
  let drained: () => void = () => {};
  const allDone = new Promise<void>((r) => (drained = r));
  const sockets = Math.ceil(o.concurrency / o.perSocket);
  const conns = await Promise.all(Array.from({ length: sockets }, () => new Promise<{ ws: WebSocket; live: Map<string, { sent: number; first: number }> }>((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve({ ws, live: new Map() }));
    ws.once('error', reject);
  })));
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;

  conns.forEach(({ ws, live }, k) => {
    const start = (): void => {
      const id = String(n++);
      live.set(id, { sent: performance.now(), first: Number.NaN });
      liveCount++;
      ws.send(JSON.stringify({ ...o.generate(Number(id)), type: 'generate', id }));
    };
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      const g = f.id === null ? undefined : live.get(f.id);
      if (!g) return;
      const now = performance.now();
      if (f.type === 'delta') {
        const k = f.tokens?.length ?? 0;
        if (now <= deadline) windowTokens += k;
        if (Number.isNaN(g.first) && k > 0) g.first = now;
      }
      if (f.type === 'error') errors++;
      if (f.type !== 'done') return;
      live.delete(f.id!);
      liveCount--;
      if ((f.finish_reason === 'length' || f.finish_reason === 'stop') && now <= deadline) {
        samples.push({ latencyMs: now - g.sent, firstBlockMs: (Number.isNaN(g.first) ? now : g.first) - g.sent, completionTokens: f.usage?.completion_tokens ?? 0 });
        cached += f.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      }
      if (now < deadline && (o.total === undefined || n < o.total)) start();
      else if (liveCount === 0) drained();
    });
    const here = Math.min(o.perSocket, o.concurrency - k * o.perSocket);
    for (let i = 0; i < here && (o.total === undefined || n < o.total); i++) start();
  });
  let end = deadline;
  if (o.total !== undefined) {
    await Promise.race([allDone, new Promise((r) => setTimeout(r, o.seconds * 1000))]);
    end = Math.min(deadline, performance.now());
  }

  // Timers may fire a little early against performance.now(): wait out the rest.
  while (performance.now() < end) await new Promise((r) => setTimeout(r, Math.max(1, end - performance.now())));
  const seconds = (performance.now() - t0) / 1000;
  // Cancel what is still running and wait for it, so the server is idle for whoever is next.
  if (liveCount > 0) {
    for (const { ws, live } of conns) for (const id of live.keys()) ws.send(JSON.stringify({ type: 'cancel', id }));
    await Promise.race([allDone, new Promise((r) => setTimeout(r, 30_000))]);
  }
  // A close handshake the server does not finish in a second is not worth waiting for (the ws
  // client would hold the process for its 30 s close timeout).
  await Promise.all(conns.map(({ ws }) => new Promise<void>((resolve) => {
    const t = setTimeout(() => { ws.terminate(); resolve(); }, 1000);
    ws.once('close', () => { clearTimeout(t); resolve(); });
    ws.close();
  })));
  const r = summarize(o.scenario, o.concurrency, seconds, samples, errors);
  // Throughput counts every token streamed within the time, finished generation or not: at
  // high concurrency few long generations finish inside a short run.
  r.tokensPerSecond = windowTokens / seconds;
  r.cachedPromptTokens = cached;
  return r;
}
