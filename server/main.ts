// `npm start`: fork the engine process, load the model directory and the tokenizer, serve.
// The engine is forked first, before this process loads the rest of its modules and the
// tokenizer: the engine's ONNX Runtime session is most of a cold start, and the two processes
// then start side by side instead of one after the other.
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
    threads: config.threads,
    maxBatch: config.maxBatch,
    maxQueue: config.maxQueue,
    ...(config.cacheMb !== undefined ? { cacheBudgetBytes: config.cacheMb * 1024 * 1024 } : {}),
    ...(config.ortCacheDir !== undefined ? { optimizedCacheDir: config.ortCacheDir } : {}),
  });
  // Awaited below; a start failure must not surface as an unhandled rejection meanwhile.
  engineStarting.catch(() => undefined);
  markStartup('server:engine-forked');
  const [{ pino }, { loadModelDir }, { chatTemplateOf }, { TextTokenizer }, { createServer }] = await Promise.all([
    import('pino'),
    import('../engine/manifest.js'),
    import('../tokenizer/chat.js'),
    import('../tokenizer/tokenizer.js'),
    import('./app.js'),
  ]);
  markStartup('server:modules');
  const log = pino({ level: config.logLevel });
  const dir = loadModelDir(config.modelDir);
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
    { port: server.port, model: engine.model.name, family: engine.model.family, device: config.device, auth: config.apiKeys.length > 0 },
    `serving ${engine.model.name} on http://${config.host}:${server.port} (WebSocket /v1/ws)`,
  );
  markStartup('server:listening');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close();
    void engine.close().finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`dlm-serve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
