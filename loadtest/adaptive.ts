// What the adaptive samplers' bounds buy on one model, in one run: network calls per token, Gen
// PPL under the judge and unigram entropy of the same number of unconditional samples per
// setting (fixed length, ignore_eos, seeds 0..n-1), against first_hitting (one token per call)
// and confidence_topk at the model's default steps, so that a user can pick a bound. NFE/token
// and the scores are counts and do not depend on the machine; tokens/s is the ratio to the
// confidence_topk row of the same run (each row starts its own engine, one after another).
//
//   npm run bench:adaptive -- [--model DIR] [--samples 8] [--max-tokens 64] [--threads N]
import { parseArgs } from 'node:util';
import type { GenerationParams } from '../engine/protocol.js';
import { sampleAndScore } from '../engine/eval/yardstick.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/default' },
    judge: { type: 'string', default: 'models/zoo/judge' },
    samples: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '64' },
    threads: { type: 'string' },
  },
});

interface Row { label: string; sampler: string; extra: Partial<GenerationParams> }

const ROWS: Row[] = [
  { label: 'first_hitting', sampler: 'first_hitting', extra: {} },
  { label: 'confidence_topk (default steps)', sampler: 'confidence_topk', extra: {} },
  ...[0.1, 1, 4, 16, 64].map((g) => ({ label: `entropy_bound ${g}`, sampler: 'entropy_bound', extra: { entropyBound: g } })),
  ...[1, 2, 4, 8].map((f) => ({ label: `confidence_factor ${f}`, sampler: 'confidence_factor', extra: { confidenceFactor: f } })),
];

async function main(): Promise<void> {
  const samples = Number(values.samples);
  const maxTokens = Number(values['max-tokens']);
  const threads = values.threads ? Number(values.threads) : undefined;
  const results = [];
  for (const r of ROWS) {
    results.push({ row: r, res: await sampleAndScore({ model: values.model!, judge: values.judge!, sampler: r.sampler, samples, maxTokens, threads, extra: r.extra }) });
  }
  const base = results.find((x) => x.row.sampler === 'confidence_topk')!.res.tokensPerSecond;
  console.log(`model ${values.model}: ${samples} samples x ${maxTokens} tokens per row, unconditional, the model's default temperature`);
  console.log('| sampler, bound | NFE / token | tokens / NFE | Gen PPL | entropy | tokens/s vs confidence_topk |');
  console.log('|---|---|---|---|---|---|');
  for (const { row, res } of results) {
    console.log(`| ${row.label} | ${res.nfePerToken.toFixed(3)} | ${(1 / res.nfePerToken).toFixed(2)} | ${res.genPpl.toFixed(1)} | ${res.entropy.toFixed(2)} | ${(res.tokensPerSecond / base).toFixed(2)}x |`);
  }
}

void main();
