// Per-sampler cost on one model: tokens/s and network calls (NFE) per token, the same prompt,
// length and steps for every sampler, in one run (compare the ratios, not absolute numbers
// across machines or runs).
//
//   npm run bench -- [--model DIR] [--max-tokens 64] [--steps 32] [--repeats 3] [--threads N]
import { parseArgs } from 'node:util';
import { startEngine } from '../engine/client.js';
import type { GenerationParams } from '../engine/protocol.js';
import { DEFAULT_MODEL_DIR } from '../server/config.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: process.env.DLM_MODEL ?? DEFAULT_MODEL_DIR },
    'max-tokens': { type: 'string', default: '64' },
    steps: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '4' },
    threads: { type: 'string' },
  },
  strict: false,
});

async function main(): Promise<void> {
  const engine = await startEngine({ modelDir: String(values.model), device: 'cpu', threads: values.threads ? Number(values.threads) : undefined });
  const maxTokens = Number(values['max-tokens']);
  const steps = Number(values.steps);
  const repeats = Number(values.repeats);
  console.log(`model ${engine.model.name}: ${maxTokens} tokens, ${steps} steps (per window), batch 1, ${repeats} rounds over the samplers`);
  console.log('sampler               tokens/s   NFE/token   vs ddpm (tokens/s)');
  const run = (sampler: string, seed: number, acc: { tokens: number; nfe: number; ms: number }) => {
    const params: GenerationParams = { ...engine.model.defaults, sampler, steps, maxTokens, seed, ignoreEos: true, stopTokenIds: [], streamSteps: false };
    const t0 = performance.now();
    return new Promise<void>((resolve, reject) => engine.generate([1], params, {
      commit: (t) => { acc.tokens += t.length; },
      error: (e) => reject(new Error(e.message)),
      done: (d) => { acc.nfe += d.usage.nfe; acc.ms += performance.now() - t0; resolve(); },
    }));
  };
  const samplers = engine.model.samplers;
  await run(samplers[0]!, 1000, { tokens: 0, nfe: 0, ms: 0 }); // warm-up: first-call allocations
  const acc = new Map(samplers.map((s) => [s, { tokens: 0, nfe: 0, ms: 0 }]));
  // Round-robin, so that load from elsewhere on the machine falls on every sampler alike.
  for (let r = 0; r < repeats; r++) for (const sampler of samplers) await run(sampler, r, acc.get(sampler)!);
  const tps = (s: string) => { const a = acc.get(s)!; return a.tokens / (a.ms / 1000); };
  const base = acc.has('ddpm') ? tps('ddpm') : 0;
  for (const sampler of samplers) {
    const a = acc.get(sampler)!;
    console.log(`${sampler.padEnd(20)} ${tps(sampler).toFixed(1).padStart(9)} ${(a.nfe / a.tokens).toFixed(3).padStart(11)} ${base ? (tps(sampler) / base).toFixed(2).padStart(12) + 'x' : ''}`);
  }
  await engine.close();
}

void main();
