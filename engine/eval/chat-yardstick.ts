// npm run chat-yardstick -- --model DIR --pairs .work/chat/heldout.jsonl [--n 48] [--judge models/zoo/judge]
//                           [--max-tokens 64] [--seed 0] [--threads N] [--out result.json]
// The chat yardstick beside Gen PPL: held-out instruction pairs (models/data/build_instructions.py:
// words, commands and FAQ questions never trained on) go through the real engine, formatted with
// the model's own chat template exactly as the server formats them, with the model's default
// sampler and settings and EOS ending the answer. Each answer is scored against the reference
// answer (token F1 and ROUGE-L, chat-score.ts), and the answers' Gen PPL is taken under the judge.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import tokenizers from 'tokenizers';
import { applyChatTemplate, chatTemplateOf, type ChatMessage } from '../../tokenizer/chat.js';
import { startEngine } from '../client.js';
import { loadModelDir } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import { rougeL, tokenF1 } from './chat-score.js';
import { Judge, score } from './judge.js';

export interface ChatPair {
  kind: string;
  key: string;
  /** The conversation; the last message is the assistant's reference answer. */
  messages: ChatMessage[];
}

export interface ScoredExchange {
  kind: string;
  key: string;
  messages: ChatMessage[];
  answer: string;
  f1: number;
  rougeL: number;
}

export interface KindScore { n: number; f1: number; rougeL: number }

export interface ChatYardstickResult {
  model: string; sampler: string; steps: number; maxTokens: number; pairs: number;
  f1: number; rougeL: number; byKind: Record<string, KindScore>;
  /** Gen PPL of the non-empty answers under the judge; null when every answer was empty. */
  answerGenPpl: number | null; emptyAnswers: number; meanAnswerTokens: number; seconds: number;
  exchanges: ScoredExchange[];
}

/** `n` pairs taken in turn from each kind (file order within a kind), so every kind is scored. */
export function pickPairs(rows: readonly ChatPair[], n: number): ChatPair[] {
  const byKind = new Map<string, ChatPair[]>();
  for (const r of rows) {
    if (r.messages.length < 2 || r.messages[r.messages.length - 1]!.role !== 'assistant') continue;
    const list = byKind.get(r.kind) ?? [];
    list.push(r);
    byKind.set(r.kind, list);
  }
  const kinds = [...byKind.keys()].sort();
  const out: ChatPair[] = [];
  for (let i = 0; out.length < n; i++) {
    let any = false;
    for (const k of kinds) {
      const row = byKind.get(k)![i];
      if (row && out.length < n) {
        out.push(row);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

export function readPairs(path: string): ChatPair[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ChatPair);
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

export async function chatYardstick(o: {
  model: string; judge: string; pairs: readonly ChatPair[]; maxTokens?: number; seed?: number; threads?: number;
  extra?: Partial<GenerationParams>;
}): Promise<ChatYardstickResult> {
  const md = loadModelDir(o.model);
  const template = chatTemplateOf(md.manifest);
  const tok = tokenizers.Tokenizer.fromFile(md.tokenizerPath);
  const engine = await startEngine({ modelDir: o.model, device: 'cpu', threads: o.threads, maxBatch: Math.min(16, o.pairs.length) });
  const params: Omit<GenerationParams, 'seed'> = {
    ...engine.model.defaults, maxTokens: o.maxTokens ?? 64, ignoreEos: false, stopTokenIds: [], streamSteps: false, ...o.extra,
  };
  const t0 = performance.now();
  let runs: number[][];
  try {
    runs = await Promise.all(o.pairs.map(async (pair, i) => {
      const text = applyChatTemplate(pair.messages.slice(0, -1), template);
      const prompt = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
      return new Promise<number[]>((resolve, reject) => {
        const ids: number[] = [];
        engine.generate(prompt, { ...params, seed: (o.seed ?? 0) + i }, {
          commit: (t) => ids.push(...t),
          error: (e) => reject(new Error(e.message)),
          done: () => resolve(ids),
        });
      });
    }));
  } finally {
    await engine.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const exchanges: ScoredExchange[] = [];
  const answers: { text: string; ids: number[] }[] = [];
  for (let i = 0; i < o.pairs.length; i++) {
    const pair = o.pairs[i]!;
    const ids = runs[i]!;
    const answer = (await tok.decode(ids, true)).trim();
    const reference = pair.messages[pair.messages.length - 1]!.content;
    exchanges.push({ kind: pair.kind, key: pair.key, messages: pair.messages, answer, f1: tokenF1(answer, reference), rougeL: rougeL(answer, reference) });
    if (answer) answers.push({ text: answer, ids });
  }
  let answerGenPpl: number | null = null;
  if (answers.length) {
    const judge = await Judge.open(o.judge, o.threads);
    try {
      answerGenPpl = (await score(judge, answers)).genPpl;
    } finally {
      await judge.close();
    }
  }
  const byKind: Record<string, KindScore> = {};
  for (const k of [...new Set(exchanges.map((e) => e.kind))].sort()) {
    const es = exchanges.filter((e) => e.kind === k);
    byKind[k] = { n: es.length, f1: mean(es.map((e) => e.f1)), rougeL: mean(es.map((e) => e.rougeL)) };
  }
  return {
    model: md.manifest.name, sampler: params.sampler, steps: params.steps, maxTokens: params.maxTokens, pairs: o.pairs.length,
    f1: mean(exchanges.map((e) => e.f1)), rougeL: mean(exchanges.map((e) => e.rougeL)), byKind,
    answerGenPpl, emptyAnswers: exchanges.filter((e) => !e.answer).length,
    meanAnswerTokens: mean(runs.map((r) => r.length)), seconds, exchanges,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' }, judge: { type: 'string', default: 'models/zoo/judge' },
      pairs: { type: 'string', default: '.work/chat/heldout.jsonl' }, n: { type: 'string', default: '48' },
      'max-tokens': { type: 'string', default: '64' }, seed: { type: 'string', default: '0' },
      threads: { type: 'string' }, out: { type: 'string' },
    },
  });
  const r = await chatYardstick({
    model: values.model!, judge: values.judge!, pairs: pickPairs(readPairs(values.pairs!), Number(values.n)),
    maxTokens: Number(values['max-tokens']), seed: Number(values.seed), threads: values.threads ? Number(values.threads) : undefined,
  });
  if (values.out) writeFileSync(values.out, JSON.stringify(r, null, 1) + '\n');
  const { exchanges, ...summary } = r;
  console.log(JSON.stringify({ ...summary, example: exchanges[0] ? { q: exchanges[0].messages.at(-2)?.content, a: exchanges[0].answer } : null }));
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
