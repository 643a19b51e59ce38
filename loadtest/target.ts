// The server a load scenario runs against: started here on loopback (port 0) around its own
// engine process, with the batching settings under test; or an already-running server given by
// URL (then its settings are whatever it was started with).
import { pino } from 'pino';
import { startEngine } from '../engine/client.js';
import type { Device, Engine } from '../engine/api.js';
import { loadModelDir, type Manifest } from '../engine/manifest.js';
import { createServer } from '../server/app.js';
import { chatTemplateOf } from '../tokenizer/chat.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

export interface TargetOptions {
  modelDir: string;
  /** 1 = batching off. */
  maxBatch: number;
  maxQueue: number;
  threads?: number;
  /** Default cpu. */
  device?: Device;
}

export interface Target {
  /** http://127.0.0.1:PORT */
  base: string;
  /** The served model's name (requests name it). */
  model: string;
  manifest: Manifest | null;
  engine: Engine | null;
  close(): Promise<void>;
}

export async function startTarget(o: TargetOptions): Promise<Target> {
  const dir = loadModelDir(o.modelDir);
  const engine = await startEngine({ modelDir: dir.dir, device: o.device ?? 'cpu', threads: o.threads, maxBatch: o.maxBatch, maxQueue: o.maxQueue });
  const server = await createServer({
    engine,
    tokenizer: TextTokenizer.fromFile(dir.tokenizerPath),
    chatTemplate: chatTemplateOf(dir.manifest),
    log: pino({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    chat: false,
    limits: { maxLiveSequences: o.maxBatch + o.maxQueue },
  });
  return {
    base: `http://127.0.0.1:${server.port}`,
    model: engine.model.name,
    manifest: dir.manifest,
    engine,
    close: async () => {
      server.close();
      await engine.close();
    },
  };
}

/** A server someone else started; only loopback, so a load test never leaves the machine. */
export async function remoteTarget(url: string): Promise<Target> {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error(`--url must be a loopback address, got ${u.hostname}`);
  const res = await fetch(`${u.origin}/v1/models`);
  if (!res.ok) throw new Error(`${u.origin}/v1/models answered ${res.status}`);
  const body = (await res.json()) as { data: { id: string }[] };
  return { base: u.origin, model: body.data[0]!.id, manifest: null, engine: null, close: async () => {} };
}
