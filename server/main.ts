// `npm start`: fork the engine process, load the model directory and the tokenizer, serve.
// The engine is forked first, before this process loads the rest of its modules and the
// tokenizer: the engine's ONNX Runtime session is most of a cold start, and the two processes
// then start side by side instead of one after the other.
import { constants } from 'node:os';
import { startEngine } from '../engine/client.js';
import { markProcessStart, markStartup } from '../engine/startup-trace.js';
import { ConfigError, parseConfig, USAGE } from './config.js';

markProcessStart('server');

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const engineStarting = startEngine({
    modelDir: config.modelDir,
    device: config.device,
    precision: config.precision,
    threads: config.threads,
    maxBatch: config.maxBatch,
    maxQueue: config.maxQueue,
    ...(config.cacheMb !== undefined ? { cacheBudgetBytes: config.cacheMb * 1024 * 1024 } : {}),
    ...(config.ortCacheDir !== undefined ? { optimizedCacheDir: config.ortCacheDir } : {}),
  });
  // Awaited below; a start failure must not surface as an unhandled rejection meanwhile.
  engineStarting.catch(() => undefined);
  markStartup('server:engine-forked');
  // pino is CommonJS: its module.exports is the default export both unbundled and bundled.
  const [{ default: pino }, { loadModelDir }, { pickPrecision }, { chatTemplateOf }, { TextTokenizer }, { createServer }] = await Promise.all([
    import('pino'),
    import('../engine/manifest.js'),
    import('../engine/precision.js'),
    import('../tokenizer/chat.js'),
    import('../tokenizer/tokenizer.js'),
    import('./app.js'),
  ]);
  markStartup('server:modules');
  const log = pino({ level: config.logLevel });
  const dir = loadModelDir(config.modelDir, { served: true });
  // A model without the asked variant is refused here, by name, whatever the engine says later.
  const { precision } = pickPrecision(dir, config.precision, config.device);
  const tokenizer = TextTokenizer.fromFile(dir.tokenizerPath);
  markStartup('server:tokenizer');
  const engine = await engineStarting;
  markStartup('server:engine-ready');
  const server = await createServer({
    engine,
    tokenizer,
    chatTemplate: chatTemplateOf(dir.manifest),
    log,
    host: config.host,
    port: config.port,
    apiKeys: config.apiKeys,
    chat: config.chat,
    limits: { maxLiveSequences: config.maxBatch + config.maxQueue },
  });
  log.info(
    { port: server.port, model: engine.model.name, family: engine.model.family, device: config.device, precision, auth: config.apiKeys.length > 0 },
    `serving ${engine.model.name} on http://${config.host}:${server.port} (WebSocket /v1/ws)`,
  );
  markStartup('server:listening');
  // The first signal drains (server/drain.ts), then closes the engine and exits 0; the engine
  // ignores the signals itself and keeps decoding until then. A second signal exits at once
  // with 128 + its number (130 for SIGINT, 143 for SIGTERM), as a shell reports a killed process.
  let stopping = false;
  const stop = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting for the drain');
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    log.info({ signal, drain_seconds: config.drainSeconds, in_flight: server.inFlight() }, 'draining: admitting nothing new, waiting for requests in flight');
    void server
      .drain(config.drainSeconds)
      .then((report) => {
        log.info(report, 'drained; stopping the engine');
        return engine.close();
      })
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`dlm-serve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
