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
    repeats: { type: 'string', default: '3' },
    threads: { type: 'string' },
  },
  strict: false,
});

async function main(): Promise<void> {
  const engine = await startEngine({ modelDir: String(values.model), device: 'cpu', threads: values.threads ? Number(values.threads) : undefined });
  const maxTokens = Number(values['max-tokens']);
  const steps = Number(values.steps);
  const repeats = Number(values.repeats);
  console.log(`model ${engine.model.name}: ${maxTokens} tokens, ${steps} steps (per window), batch 1, ${repeats} runs per sampler`);
  console.log('sampler               tokens/s   NFE/token   vs ddpm (tokens/s)');
  let base = 0;
  for (const sampler of engine.model.samplers) {
    let tokens = 0;
    let nfe = 0;
    const t0 = performance.now();
    for (let r = 0; r < repeats; r++) {
      const params: GenerationParams = { ...engine.model.defaults, sampler, steps, maxTokens, seed: r, ignoreEos: true, stopTokenIds: [], streamSteps: false };
      await new Promise<void>((resolve, reject) => engine.generate([1], params, {
        commit: (t) => { tokens += t.length; },
        error: (e) => reject(new Error(e.message)),
        done: (d) => { nfe += d.usage.nfe; resolve(); },
      }));
    }
    const tps = tokens / ((performance.now() - t0) / 1000);
    if (sampler === 'ddpm') base = tps;
    console.log(`${sampler.padEnd(20)} ${tps.toFixed(1).padStart(9)} ${(nfe / tokens).toFixed(3).padStart(11)} ${base ? (tps / base).toFixed(2).padStart(12) + 'x' : ''}`);
  }
  await engine.close();
}

void main();
