// The engine process. ONNX Runtime's session.run blocks the thread it runs on, so the engine
// lives in its own process (forked by engine/client.ts): the server's event loop never waits on
// inference, and a crash or hang here is survivable (the client restarts this process).
// Messages are engine/protocol.ts objects over Node's IPC channel (advanced serialization).
import { EngineCore, EngineRequestError } from './core.js';
import type { EngineOptions } from './api.js';
import type { FromEngine, ToEngine } from './protocol.js';
import { markProcessStart, markStartup } from './startup-trace.js';

markProcessStart('engine');

function send(msg: FromEngine): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  markStartup('engine:modules');
  const opts = JSON.parse(process.argv[2] ?? '{}') as EngineOptions;
  let core: EngineCore;
  try {
    core = await EngineCore.open(opts, {
      commit: (id, tokens) => send({ type: 'commit', id, tokens }),
      step: (msg) => send(msg),
      error: (msg) => send(msg),
      done: (msg) => send(msg),
      stats: (msg) => send(msg),
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    send({ type: 'error', id: null, code: e.code ?? 'engine_start_failed', message: e.message ?? String(err) });
    // Let the message leave before exiting.
    setTimeout(() => process.exit(1), 50);
    return;
  }
  process.on('message', (raw) => {
    const msg = raw as ToEngine;
    switch (msg.type) {
      case 'generate':
        try {
          core.generate(msg.id, msg.prompt, msg.params);
        } catch (err) {
          const e = err as Error;
          const code = err instanceof EngineRequestError ? err.code : 'engine_error';
          send({ type: 'error', id: msg.id, code, message: e.message });
          send({ type: 'done', id: msg.id, reason: 'error', usage: { promptTokens: msg.prompt.length, completionTokens: 0, nfe: 0, cachedTokens: 0 } });
        }
        break;
      case 'cancel':
        core.cancel(msg.id);
        break;
      case 'shutdown':
        void core.close().finally(() => process.exit(0));
        break;
    }
  });
  process.on('disconnect', () => process.exit(0)); // the server went away
  markStartup('engine:ready');
  // The server decides when the engine stops: a Ctrl-C reaches the whole process group and
  // systemd signals the whole cgroup, yet sequences in flight must finish during the server's
  // drain. It sends `shutdown` when done; were it killed instead, `disconnect` ends us.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  send({ type: 'ready', model: core.model });
}

void main();
