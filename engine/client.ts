// The server's side of the engine: forks engine/main.js, routes its messages to per-sequence
// callbacks and its pushed stats to subscribers, and survives it. When the engine process dies,
// or falls silent while sequences are in flight (the stats of every tick are its heartbeat),
// every live sequence gets an `engine_crashed` error and then `done`, and a fresh engine
// process starts.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, type Engine, type EngineOptions, type SequenceEvents, type SequenceHandle } from './api.js';
import { childEnv } from './child-env.js';
import type { FromEngine, GenerationParams, ModelInfo, StatsMsg, ToEngine } from './protocol.js';

// The engine's entry beside this file; in the bundled server (scripts/bundle-entries.ts) this
// file is dist/server/main.js, and the bundler names the engine's entry instead.
declare const DLM_ENGINE_ENTRY: string | undefined;
const MAIN = fileURLToPath(new URL(typeof DLM_ENGINE_ENTRY === 'string' ? DLM_ENGINE_ENTRY : './main.js', import.meta.url));
/** Silence with work in flight for this long means the engine is hung: killed and restarted. */
const WATCHDOG_MS = 60_000;
/** Silence with work in flight for this long (or half the watchdog's) makes /health say unavailable. */
const HEALTH_SILENCE_MS = 10_000;

export class EngineStartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'EngineStartError';
  }
}

/** generate() refused at once (the queue is full). */
export class EngineBusyError extends Error {
  readonly code = 'queue_full';
}

interface Live {
  events: SequenceEvents;
  promptTokens: number;
}

class EngineClient implements Engine {
  model!: ModelInfo;
  private child: ChildProcess | null = null;
  private ready = false;
  private closing = false;
  private nextId = 1;
  private readonly live = new Map<number, Live>();
  private pending: ToEngine[] = [];
  private readonly statsListeners = new Set<(s: StatsMsg) => void>();
  /** When the engine last sent anything (or became ready). */
  private lastHeard = performance.now();
  private watchdog: NodeJS.Timeout | null = null;
  private readonly watchdogMs: number;
  /** Why the watchdog killed the engine, for the lost sequences' errors. */
  private hung: string | null = null;
  restarts = 0;

  constructor(private readonly opts: EngineOptions) {
    this.watchdogMs = opts.watchdogMs ?? WATCHDOG_MS;
  }

  /** Starts the engine process; resolves once it reports ready, rejects with its start error. */
  spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = fork(MAIN, [JSON.stringify(this.opts)], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: childEnv() });
      this.child = child;
      let started = false;
      let startError: EngineStartError | null = null;
      child.on('message', (raw) => {
        const msg = raw as FromEngine;
        if (!started) {
          if (msg.type === 'ready') {
            started = true;
            this.model = msg.model;
            this.ready = true;
            this.lastHeard = performance.now();
            for (const m of this.pending) child.send(m);
            this.pending = [];
            resolve();
          } else if (msg.type === 'error' && msg.id === null) {
            startError = new EngineStartError(msg.code, msg.message);
          }
          return;
        }
        this.onMessage(msg);
      });
      child.on('exit', (code, signal) => {
        this.ready = false;
        if (!started) {
          reject(startError ?? new EngineStartError('engine_start_failed', `engine process exited before it was ready (code ${code}, signal ${signal})`));
          return;
        }
        this.onCrash(`engine process exited (code ${code}, signal ${signal})`);
      });
    });
  }

  private onMessage(msg: FromEngine): void {
    this.lastHeard = performance.now();
    switch (msg.type) {
      case 'commit': this.live.get(msg.id)?.events.commit(msg.tokens); break;
      case 'step': this.live.get(msg.id)?.events.step?.(msg); break;
      case 'error':
        if (msg.id !== null) this.live.get(msg.id)?.events.error?.(msg);
        break;
      case 'done': {
        const l = this.live.get(msg.id);
        this.live.delete(msg.id);
        l?.events.done(msg);
        break;
      }
      case 'stats':
        for (const l of this.statsListeners) l(msg);
        break;
      case 'ready': break;
    }
  }

  private onCrash(exited: string): void {
    const why = this.hung ?? exited;
    this.hung = null;
    const lost = [...this.live.entries()];
    this.live.clear();
    for (const [id, l] of lost) {
      l.events.error?.({ type: 'error', id, code: 'engine_crashed', message: `${why}; the request was lost, retry it` });
      l.events.done({ type: 'done', id, reason: 'error', usage: { promptTokens: l.promptTokens, completionTokens: 0, nfe: 0, cachedTokens: 0 } });
    }
    if (this.closing) return;
    this.restarts++;
    this.spawn().catch((err: Error) => {
      process.emitWarning(`engine restart failed: ${err.message}`);
    });
  }

  private send(msg: ToEngine): void {
    if (this.ready && this.child?.connected) this.child.send(msg);
    else this.pending.push(msg);
  }

  generate(prompt: number[], params: GenerationParams, events: SequenceEvents): SequenceHandle {
    const cap = (this.opts.maxBatch ?? DEFAULT_MAX_BATCH) + (this.opts.maxQueue ?? DEFAULT_MAX_QUEUE);
    if (this.live.size >= cap) throw new EngineBusyError(`the engine has ${this.live.size} sequences; retry later`);
    const id = this.nextId++;
    this.live.set(id, { events, promptTokens: prompt.length });
    this.arm();
    this.send({ type: 'generate', id, prompt, params });
    return { id, cancel: () => { if (this.live.has(id)) this.send({ type: 'cancel', id }); } };
  }

  onStats(listener: (s: StatsMsg) => void): () => void {
    this.statsListeners.add(listener);
    return () => { this.statsListeners.delete(listener); };
  }

  healthy(): boolean {
    return this.ready && this.child?.connected === true && this.silence() <= Math.min(HEALTH_SILENCE_MS, this.watchdogMs / 2);
  }

  /** How long the engine has been silent with work in flight (0 when it owes nothing). */
  private silence(): number {
    return this.live.size > 0 && this.ready ? performance.now() - this.lastHeard : 0;
  }

  /** The watchdog runs while sequences are in flight (it stops itself when none are left). */
  private arm(): void {
    if (this.watchdog) return;
    if (this.live.size === 1) this.lastHeard = performance.now();
    this.watchdog = setInterval(() => {
      if (this.live.size === 0 || this.closing) {
        clearInterval(this.watchdog!);
        this.watchdog = null;
        return;
      }
      if (this.silence() > this.watchdogMs && this.hung === null) {
        this.hung = `the engine sent nothing for ${Math.round(this.silence() / 1000)} s with ${this.live.size} sequences in flight (hung); it was restarted`;
        process.emitWarning(this.hung);
        this.child?.kill('SIGKILL');
      }
    }, Math.max(10, Math.min(1000, this.watchdogMs / 4)));
    this.watchdog.unref();
  }

  /** For tests: the engine process id. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.watchdog) { clearInterval(this.watchdog); this.watchdog = null; }
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => { clearTimeout(timer); resolve(); });
      if (child.connected) child.send({ type: 'shutdown' } satisfies ToEngine);
      else child.kill('SIGKILL');
    });
  }
}

export async function startEngine(opts: EngineOptions): Promise<Engine & { readonly pid: number | undefined; readonly restarts: number }> {
  const client = new EngineClient(opts);
  await client.spawn();
  return client;
}
