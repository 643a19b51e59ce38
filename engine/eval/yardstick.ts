// npm run yardstick -- --model DIR [--sampler S] [--steps N] [--samples 16] [--max-tokens 128]
//                      [--judge models/zoo/judge] [--prompt TEXT] [--out samples.jsonl]
//                      [--score-only samples.jsonl] [--precision fp32|int8]
// Samples from any model directory through the engine (unconditional unless --prompt; fixed
// length, ignore_eos as the papers do), then prints Gen PPL under the judge, unigram entropy,
// NFE per token and tokens/s as one JSON line.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import tokenizers from 'tokenizers';
import { startEngine } from '../client.js';
import { loadModelDir, type Precision } from '../manifest.js';
import type { DoneMsg, GenerationParams } from '../protocol.js';
import { Judge, score } from './judge.js';

export interface YardstickResult {
  model: string; precision: Precision; sampler: string; steps: number; samples: number; maxTokens: number;
  genPpl: number; entropy: number; nfePerToken: number; tokensPerSecond: number; seconds: number;
  texts: string[];
}

export async function sampleAndScore(o: {
  model: string; judge: string; sampler?: string; steps?: number; samples: number; maxTokens: number;
  prompt?: string; threads?: number; seed?: number; extra?: Partial<GenerationParams>; precision?: Precision;
}): Promise<YardstickResult> {
  const md = loadModelDir(o.model);
  const tok = tokenizers.Tokenizer.fromFile(md.tokenizerPath);
  const engine = await startEngine({ modelDir: o.model, device: 'cpu', precision: o.precision ?? 'fp32', threads: o.threads, maxBatch: o.samples });
  const prompt = o.prompt ? (await tok.encode(o.prompt, null, { addSpecialTokens: false })).getIds() : [];
  const params: Omit<GenerationParams, 'seed'> = {
    ...engine.model.defaults, sampler: o.sampler ?? engine.model.defaults.sampler, steps: o.steps ?? engine.model.defaults.steps,
    maxTokens: o.maxTokens, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...o.extra,
  };
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: o.samples }, (_, i) => new Promise<{ ids: number[]; done: DoneMsg }>((resolve, reject) => {
    const ids: number[] = [];
    engine.generate(prompt, { ...params, seed: (o.seed ?? 0) + i }, {
      commit: (t) => ids.push(...t),
      error: (e) => reject(new Error(e.message)),
      done: (done) => resolve({ ids, done }),
    });
  })));
  const seconds = (performance.now() - t0) / 1000;
  await engine.close();
  const samples = await Promise.all(runs.map(async (r) => ({ ids: r.ids, text: await tok.decode(r.ids, true) })));
  const judge = await Judge.open(o.judge, o.threads);
  const s = await score(judge, samples);
  await judge.close();
  const tokens = runs.reduce((a, r) => a + r.ids.length, 0);
  const nfe = runs.reduce((a, r) => a + r.done.usage.nfe, 0);
  return {
    model: md.manifest.name, precision: o.precision ?? 'fp32', sampler: params.sampler, steps: params.steps, samples: o.samples, maxTokens: o.maxTokens,
    genPpl: s.genPpl, entropy: s.entropy, nfePerToken: nfe / Math.max(1, tokens), tokensPerSecond: tokens / seconds, seconds,
    texts: samples.map((x) => x.text),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' },
      judge: { type: 'string', default: 'models/zoo/judge' },
      sampler: { type: 'string' }, steps: { type: 'string' }, samples: { type: 'string', default: '16' },
      'max-tokens': { type: 'string', default: '128' }, prompt: { type: 'string' }, seed: { type: 'string', default: '0' },
      threads: { type: 'string' }, out: { type: 'string' }, 'score-only': { type: 'string' }, precision: { type: 'string', default: 'fp32' },
    },
  });
  if (values['score-only']) {
    const samples = readFileSync(values['score-only'], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string; ids?: number[] });
    const judge = await Judge.open(values.judge!);
    const s = await score(judge, samples.map((x) => ({ text: x.text, ids: x.ids ?? [] })));
    await judge.close();
    console.log(JSON.stringify({ samples: samples.length, ...s }));
    return;
  }
  const r = await sampleAndScore({
    model: values.model!, judge: values.judge!, sampler: values.sampler, steps: values.steps ? Number(values.steps) : undefined,
    samples: Number(values.samples), maxTokens: Number(values['max-tokens']), prompt: values.prompt,
    threads: values.threads ? Number(values.threads) : undefined, seed: Number(values.seed), precision: values.precision as Precision,
  });
  if (values.out) writeFileSync(values.out, r.texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const { texts, ...summary } = r;
  console.log(JSON.stringify({ ...summary, example: texts[0]?.slice(0, 160) }));
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
