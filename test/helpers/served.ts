// A real server on loopback around the real engine and the tiny test model, for the server,
// OpenAI-client and WebSocket tests. One engine per test file (it is a process to start).
import { pino } from 'pino';
import { startEngine } from '../../engine/client.js';
import type { Engine } from '../../engine/api.js';
import { loadModelDir } from '../../engine/manifest.js';
import { createServer, type RunningServer } from '../../server/app.js';
import type { Limits } from '../../server/limits.js';
import { chatTemplateOf } from '../../tokenizer/chat.js';
import { TextTokenizer } from '../../tokenizer/tokenizer.js';

/** The model the tests serve; DLM_TEST_MODEL points elsewhere (e.g. a trained default). */
export const TEST_MODEL_DIR = process.env.DLM_TEST_MODEL ?? 'models/zoo/tiny-mdlm';

export interface Served {
  engine: Engine;
  server: RunningServer;
  base: string;
  tokenizer: TextTokenizer;
  close(): Promise<void>;
}

export async function startEngineForTests(modelDir = TEST_MODEL_DIR): Promise<Engine> {
  return startEngine({ modelDir, device: 'cpu', threads: 1 });
}

/**
 * A server on a free loopback port; pass `engine` to share one engine between servers, and
 * `modelDir` to serve another model than the tiny test model.
 */
export async function serve(opts: { engine?: Engine; apiKeys?: string[]; limits?: Partial<Limits>; modelDir?: string } = {}): Promise<Served> {
  const dir = loadModelDir(opts.modelDir ?? TEST_MODEL_DIR);
  const ownEngine = opts.engine === undefined;
  const engine = opts.engine ?? (await startEngineForTests(dir.dir));
  const tokenizer = TextTokenizer.fromFile(dir.tokenizerPath);
  const server = await createServer({
    engine,
    tokenizer,
    chatTemplate: chatTemplateOf(dir.manifest),
    log: pino({ level: process.env.DLM_TEST_LOG ?? 'silent' }),
    host: '127.0.0.1',
    port: 0,
    apiKeys: opts.apiKeys,
    limits: opts.limits,
  });
  return {
    engine,
    server,
    base: `http://127.0.0.1:${server.port}`,
    tokenizer,
    close: async () => {
      server.close();
      if (ownEngine) await engine.close();
    },
  };
}

/** Parse Prometheus text into name{labels} -> value. */
export async function scrape(base: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`, { headers });
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Poll until no sequence is live in the server or the engine (or fail after `ms`). */
export async function waitIdle(base: string, ms = 5000, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = await scrape(base, headers);
    const busy = (m.get('dlm_live_sequences') ?? -1) + (m.get('dlm_engine_running_sequences') ?? -1) + (m.get('dlm_engine_queued_sequences') ?? -1);
    if (busy === 0) return m;
    if (Date.now() > deadline) throw new Error(`still busy after ${ms} ms: live=${m.get('dlm_live_sequences')} running=${m.get('dlm_engine_running_sequences')} queued=${m.get('dlm_engine_queued_sequences')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
