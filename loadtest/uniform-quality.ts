// Quality and cost of the Duo, LDDM-M, LDDM-U and ReMDM samplers against plain MDLM, in one run: for
// every row, unconditional samples through the engine (ignore_eos, fixed length), Gen PPL
// under the judge, unigram entropy, network calls per token and tokens/s; ratios against the
// MDLM row measured in the same run (compare those, not absolute numbers across runs).
//
//   npm run bench:uniform -- [--mdlm models/zoo/tiny-mdlm] [--duo models/zoo/duo-brown]...
//     [--lddm models/zoo/lddm-brown] [--lddmu models/zoo/lddmu-brown] [--judge models/zoo/judge]
//     [--samples 8] [--max-tokens 64] [--steps 32] [--duo-steps 8,16,32,128] [--threads N] [--json out.json]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GenerationParams, RemaskingParams } from '../engine/protocol.js';
import { sampleAndScore, type YardstickResult } from '../engine/eval/yardstick.js';

const { values } = parseArgs({
  options: {
    mdlm: { type: 'string', default: 'models/zoo/tiny-mdlm' },
    // Several --duo give several Duo baselines (e.g. the shipped one and one retrained beside LDDM-U).
    duo: { type: 'string', multiple: true, default: ['models/zoo/duo-brown'] },
    lddm: { type: 'string', default: 'models/zoo/lddm-brown' },
    lddmu: { type: 'string', default: 'models/zoo/lddmu-brown' },
    'duo-steps': { type: 'string', default: '8,16,32,128' },
    judge: { type: 'string', default: 'models/zoo/judge' },
    samples: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '64' },
    steps: { type: 'string', default: '32' },
    threads: { type: 'string' },
    json: { type: 'string' },
  },
});

interface Row {
  label: string;
  model: string;
  sampler: string;
  steps: number;
  remasking?: RemaskingParams;
}

const S = Number(values.steps);
const rows: Row[] = [
  { label: 'MDLM ddpm (baseline)', model: values.mdlm!, sampler: 'ddpm', steps: S },
  ...(['cap', 'rescale', 'conf', 'loop'] as const).map((schedule) => ({
    label: `MDLM remdm ${schedule}`, model: values.mdlm!, sampler: 'remdm', steps: S, remasking: { schedule },
  })),
  { label: 'LDDM-M ddpm', model: values.lddm!, sampler: 'ddpm', steps: S },
  { label: 'LDDM-M remdm rescale', model: values.lddm!, sampler: 'remdm', steps: S, remasking: { schedule: 'rescale' } },
  // LDDM-U beside Duo at each step count: the same samplers, the latent carried.
  ...values['duo-steps']!.split(',').map(Number).flatMap((steps) => [
    ...values.duo!.flatMap((duo) => [
      { label: `Duo ancestral ${steps}`, model: duo, sampler: 'duo', steps },
      { label: `Duo greedy tail ${steps}`, model: duo, sampler: 'duo_greedy', steps },
    ]),
    { label: `LDDM-U ancestral ${steps}`, model: values.lddmu!, sampler: 'duo', steps },
    { label: `LDDM-U greedy tail ${steps}`, model: values.lddmu!, sampler: 'duo_greedy', steps },
  ]),
];

async function main(): Promise<void> {
  const samples = Number(values.samples);
  const maxTokens = Number(values['max-tokens']);
  const threads = values.threads ? Number(values.threads) : undefined;
  const results: (YardstickResult & { label: string })[] = [];
  for (const r of rows) {
    const extra: Partial<GenerationParams> = r.remasking ? { remasking: r.remasking } : {};
    const res = await sampleAndScore({ model: r.model, judge: values.judge!, sampler: r.sampler, steps: r.steps, samples, maxTokens, threads, extra });
    results.push({ ...res, label: r.label });
    process.stderr.write(`${r.label}: Gen PPL ${res.genPpl.toFixed(1)}, ${res.tokensPerSecond.toFixed(0)} tokens/s\n`);
  }
  const base = results[0]!;
  console.log(`${samples} samples x ${maxTokens} tokens per row, batch ${samples}, ignore_eos; Gen PPL under ${values.judge}; ratios against "${base.label}" of this run.\n`);
  console.log('| model | sampler | steps | NFE / token | Gen PPL | entropy | tokens/s | Gen PPL vs MDLM | tokens/s vs MDLM |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const ratio = (x: number): string => `${x.toPrecision(2)}x`;
  for (const r of results) {
    console.log(`| ${r.model} | ${r.label} | ${r.steps} | ${r.nfePerToken.toFixed(3)} | ${r.genPpl.toFixed(1)} | ${r.entropy.toFixed(2)} | ${r.tokensPerSecond.toFixed(0)} | ${ratio(r.genPpl / base.genPpl)} | ${ratio(r.tokensPerSecond / base.tokensPerSecond)} |`);
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(results.map(({ texts, ...r }) => ({ ...r, sample: texts[0] })), null, 2) + '\n');
}

await main();
