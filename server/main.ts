// `npm start`: load the model directory, start the engine in its own process, serve.
import { constants } from 'node:os';
import { pino } from 'pino';
import { startEngine } from '../engine/client.js';
import { loadModelDir } from '../engine/manifest.js';
import { chatTemplateOf } from '../tokenizer/chat.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { createServer } from './app.js';
import { ConfigError, parseConfig, USAGE } from './config.js';

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
  const log = pino({ level: config.logLevel });
  const dir = loadModelDir(config.modelDir);
  const tokenizer = TextTokenizer.fromFile(dir.tokenizerPath);
  const engine = await startEngine({
    modelDir: dir.dir,
    device: config.device,
    threads: config.threads,
    maxBatch: config.maxBatch,
    maxQueue: config.maxQueue,
    ...(config.cacheMb !== undefined ? { cacheBudgetBytes: config.cacheMb * 1024 * 1024 } : {}),
  });
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
    { port: server.port, model: engine.model.name, family: engine.model.family, device: config.device, auth: config.apiKeys.length > 0 },
    `serving ${engine.model.name} on http://${config.host}:${server.port} (WebSocket /v1/ws)`,
  );
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
