// The quality yardstick of the MDLM/Duo papers: generative perplexity of samples under an
// autoregressive judge (models/zoo/judge, trained on the same corpus), and the samples' unigram
// entropy. Low Gen PPL with collapsed entropy means repetition, so both are reported.
import * as ort from 'onnxruntime-node';
import tokenizers from 'tokenizers';
import { loadModelDir } from '../manifest.js';

export class Judge {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly tok: tokenizers.Tokenizer,
    private readonly maxLength: number,
    private readonly vocab: number,
    private readonly bos: number | null,
  ) {}

  static async open(dir: string, threads?: number): Promise<Judge> {
    const md = loadModelDir(dir);
    if (md.manifest.family !== 'ar' || !md.graphPaths.lm) throw new Error(`${dir}: a judge is an 'ar' model with an 'lm' graph`);
    const session = await ort.InferenceSession.create(md.graphPaths.lm, threads ? { intraOpNumThreads: threads } : {});
    const tok = tokenizers.Tokenizer.fromFile(md.tokenizerPath);
    return new Judge(session, tok, md.manifest.max_length, md.manifest.vocab_size, md.manifest.special_tokens.eos);
  }

  /** Sum of next-token NLL (nats) and the number of tokens scored, for one text. */
  async nll(text: string): Promise<{ nll: number; tokens: number }> {
    const ids = (await this.tok.encode(text, null, { addSpecialTokens: false })).getIds();
    if (ids.length === 0) return { nll: 0, tokens: 0 };
    // The judge saw documents after [EOS]; that is the context of the first token.
    const seq = this.bos !== null ? [this.bos, ...ids] : ids;
    let total = 0;
    let count = 0;
    // Windows of the judge's length, each scoring the tokens it has not scored yet.
    const L = this.maxLength;
    for (let start = 0; start + 1 < seq.length; start += L - 1) {
      const win = seq.slice(start, start + L);
      const B = win.length;
      const out = await this.session.run({
        tokens: new ort.Tensor('int64', BigInt64Array.from(win.map(BigInt)), [1, B]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(B).fill(1n), [1, B]),
      });
      const logits = out.logits!.data as Float32Array;
      const V = this.vocab;
      for (let i = 0; i + 1 < B; i++) {
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, logits[i * V + v]!);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[i * V + v]! - max);
        total += Math.log(z) + max - logits[i * V + win[i + 1]!]!;
        count++;
      }
    }
    return { nll: total, tokens: count };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Entropy (nats) of the empirical distribution of token ids within one sample. */
export function unigramEntropy(ids: number[]): number {
  if (ids.length === 0) return 0;
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / ids.length;
    h -= p * Math.log(p);
  }
  return h;
}

export interface Score { genPpl: number; entropy: number; judgedTokens: number }

/** Gen PPL = exp(total NLL / total judged tokens); entropy averaged over samples. */
export async function score(judge: Judge, samples: { text: string; ids: number[] }[]): Promise<Score> {
  let nll = 0;
  let n = 0;
  let ent = 0;
  for (const s of samples) {
    const r = await judge.nll(s.text);
    nll += r.nll;
    n += r.tokens;
    ent += unigramEntropy(s.ids);
  }
  return { genPpl: Math.exp(nll / Math.max(1, n)), entropy: ent / Math.max(1, samples.length), judgedTokens: n };
}
