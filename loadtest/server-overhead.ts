// Server overhead: end-to-end WebSocket throughput over calling the engine directly, the same
// workload on the same engine in the same run. Rounds alternate the order (direct, ws, ws,
// direct, ...) so that warm-up and machine noise fall on both sides; we report medians.
//
//   npm run bench:server -- [--model DIR] [--concurrency 8] [--max-tokens 32] [--steps 8] [--rounds 4]
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import WebSocket from 'ws';
import { startEngine } from '../engine/client.js';
import type { Engine } from '../engine/api.js';
import { loadModelDir } from '../engine/manifest.js';
import { resolveParams } from '../server/settings.js';
import { createServer } from '../server/app.js';
import { DEFAULT_MODEL_DIR } from '../server/config.js';
import { chatTemplateOf } from '../tokenizer/chat.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: process.env.DLM_MODEL ?? DEFAULT_MODEL_DIR },
    concurrency: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '32' },
    steps: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string' },
  },
});
const concurrency = Number(values.concurrency);
const maxTokens = Number(values['max-tokens']);
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const PROMPT = 'The quick brown fox';

/** Tokens per second of `concurrency` sequences straight through engine.generate. */
async function direct(engine: Engine, prompt: number[], round: number): Promise<number> {
  const t0 = performance.now();
  let tokens = 0;
  await Promise.all(
    Array.from({ length: concurrency }, (_, i) =>
      new Promise<void>((resolve) => {
        const params = resolveParams({ max_tokens: maxTokens, steps, ignore_eos: true }, engine.model, prompt.length, round * 1000 + i);
        engine.generate(prompt, params, { commit: (t) => (tokens += t.length), done: () => resolve() });
      }),
    ),
  );
  return tokens / ((performance.now() - t0) / 1000);
}

/** The same through the server: one WebSocket, `concurrency` generations on it, text decoded. */
async function overWs(url: string, round: number): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise((r) => ws.once('open', r));
  const t0 = performance.now();
  let tokens = 0;
  let left = concurrency;
  await new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as { type: string; tokens?: number[] };
      if (f.type === 'delta') tokens += f.tokens!.length;
      if (f.type === 'done' && --left === 0) resolve();
    });
    for (let i = 0; i < concurrency; i++) {
      ws.send(JSON.stringify({ type: 'generate', id: String(i), prompt: PROMPT, settings: { max_tokens: maxTokens, steps, ignore_eos: true, seed: round * 1000 + i } }));
    }
  });
  const rate = tokens / ((performance.now() - t0) / 1000);
  ws.close();
  return rate;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const dir = loadModelDir(values.model!);
const engine = await startEngine({ modelDir: dir.dir, device: 'cpu', threads: values.threads ? Number(values.threads) : undefined });
const tokenizer = TextTokenizer.fromFile(dir.tokenizerPath);
const server = await createServer({ engine, tokenizer, chatTemplate: chatTemplateOf(dir.manifest), log: pino({ level: 'silent' }), host: '127.0.0.1', port: 0 });
const url = `ws://127.0.0.1:${server.port}/v1/ws`;
const prompt = await tokenizer.encode(PROMPT);

await direct(engine, prompt, 0); // warm-up, both paths
await overWs(url, 0);
const d: number[] = [];
const w: number[] = [];
for (let r = 1; r <= rounds; r++) {
  if (r % 2) {
    d.push(await direct(engine, prompt, r));
    w.push(await overWs(url, r));
  } else {
    w.push(await overWs(url, r));
    d.push(await direct(engine, prompt, r));
  }
}
const dm = median(d);
const wm = median(w);
console.log(`server overhead: ${engine.model.name} (${engine.model.family}), ${concurrency} concurrent x ${maxTokens} tokens, ${steps} steps, ${rounds} rounds (medians)`);
console.log(`  engine direct      ${dm.toFixed(1)} tokens/s`);
console.log(`  WebSocket end2end  ${wm.toFixed(1)} tokens/s`);
console.log(`  ratio ws/direct    ${(wm / dm).toFixed(3)}  (1.000 = no overhead)`);
server.close();
await engine.close();
