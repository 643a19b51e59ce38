// ASSD against serial any-order decoding on one AS-ARM, in one run: tokens per network call and
// wall-clock tokens/s of a single sequence (batch 1; the k values take turns so that machine
// load drifts over all of them alike), then quality from a batched sampling run per k (Gen PPL
// under the judge, unigram entropy). k = 1 is serial decoding. Compare ratios within a run.
//
//   npm run bench:assd -- [--model models/zoo/asarm-brown] [--ks 2,5,10] [--max-tokens 64]
//                         [--repeats 6] [--samples 16] [--judge models/zoo/judge] [--threads N]
import { parseArgs } from 'node:util';
import { startEngine } from '../engine/client.js';
import { sampleAndScore } from '../engine/eval/yardstick.js';
import type { GenerationParams } from '../engine/protocol.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/asarm-brown' },
    ks: { type: 'string', default: '2,5,10' },
    'max-tokens': { type: 'string', default: '64' },
    repeats: { type: 'string', default: '6' },
    samples: { type: 'string', default: '16' },
    judge: { type: 'string', default: 'models/zoo/judge' },
    threads: { type: 'string' },
  },
});

const PROMPTS = [[346, 36, 272], [], [1]];

async function main(): Promise<void> {
  const ks = [1, ...values.ks!.split(',').map(Number)];
  const maxTokens = Number(values['max-tokens']);
  const repeats = Number(values.repeats);
  const threads = values.threads ? Number(values.threads) : undefined;
  const engine = await startEngine({ modelDir: values.model!, device: 'cpu', threads, maxBatch: 1 });
  const stat = new Map(ks.map((k) => [k, { tokens: 0, nfe: 0, ms: 0 }]));
  // r = -1 warms the session up (first-run allocations) and is not counted.
  for (let r = -1; r < repeats; r++) {
    for (const k of ks) {
      const params: GenerationParams = {
        ...engine.model.defaults, sampler: 'assd', speculativeK: k, maxTokens, seed: r + 1,
        ignoreEos: true, stopTokenIds: [], streamSteps: false,
      };
      const s = r < 0 ? { tokens: 0, nfe: 0, ms: 0 } : stat.get(k)!;
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => engine.generate(PROMPTS[(r + 1) % PROMPTS.length]!, params, {
        commit: (t) => { s.tokens += t.length; },
        error: (e) => reject(new Error(e.message)),
        done: (d) => { s.nfe += d.usage.nfe; resolve(); },
      }));
      s.ms += performance.now() - t0;
    }
  }
  await engine.close();
  const serial = stat.get(1)!;
  const serialRate = serial.tokens / serial.ms;
  console.log(`model ${values.model}: ${maxTokens} tokens per sequence, batch 1, ${repeats} sequences per k (interleaved)`);
  console.log('| k | tokens / call | tokens/s | speedup vs serial | Gen PPL | entropy |');
  console.log('|---|---|---|---|---|---|');
  for (const k of ks) {
    const s = stat.get(k)!;
    const q = await sampleAndScore({
      model: values.model!, judge: values.judge!, sampler: 'assd', samples: Number(values.samples), maxTokens,
      threads, seed: 1000, extra: { speculativeK: k },
    });
    const rate = s.tokens / s.ms;
    console.log(`| ${k === 1 ? '1 (serial)' : k} | ${(s.tokens / s.nfe).toFixed(2)} | ${(rate * 1000).toFixed(1)} | ${(rate / serialRate).toFixed(2)}x | ${q.genPpl.toFixed(1)} | ${q.entropy.toFixed(2)} |`);
  }
}

void main();
