// How far a model's int8 graphs drift from its fp32 graphs on the inputs real decoding feeds
// them. The fp32 sessions decode real prompts through the real scheduler and family (so every
// network call sees exactly what the sampler would: real text, masked or noised as the family
// does it, KV caches of committed blocks); each call's feeds also go through the int8 sessions,
// and the two logits are compared position by position where the sampler reads them (positions
// whose input is [MASK] in masked families; every position otherwise).
import { DirectRunner } from '../direct-runner.js';
import { familyOf } from '../families/registry.js';
import type { GenerationParams } from '../protocol.js';
import type { Runner } from '../scheduler.js';

export interface Drift {
  calls: number;
  positions: number;
  /** Largest |logit_int8 - logit_fp32| over compared positions and the whole vocabulary. */
  maxAbsDiff: number;
  /** Share of compared positions whose most likely token is the same. */
  top1Agreement: number;
  /** Mean KL(p_fp32 || p_int8) in nats per compared position. */
  meanKl: number;
}

/**
 * Drift of one set of logits from a reference, accumulated position by position: the measures
 * of Drift over the positions compared so far. `skip` is a token id neither side may predict
 * (SUBS' [MASK]), left out of both distributions.
 */
export class LogitDrift {
  positions = 0;
  maxAbsDiff = 0;
  private agree = 0;
  private kl = 0;

  constructor(private readonly V: number, private readonly skip: number | null) {}

  /** Compares row p of a (reference) and b, both [rows, V]. */
  add(a: Float32Array, b: Float32Array, p: number): void {
    const V = this.V, skip = this.skip, o = p * V;
    let ia = 0, ib = 0, ma = -Infinity, mb = -Infinity;
    for (let v = 0; v < V; v++) {
      if (v === skip) continue;
      const x = a[o + v]!, y = b[o + v]!;
      if (x !== y) this.maxAbsDiff = Math.max(this.maxAbsDiff, Math.abs(x - y)); // equal -inf (a masked-out id) is no drift
      if (x > ma) { ma = x; ia = v; }
      if (y > mb) { mb = y; ib = v; }
    }
    let za = 0, zb = 0;
    for (let v = 0; v < V; v++) if (v !== skip) { za += Math.exp(a[o + v]! - ma); zb += Math.exp(b[o + v]! - mb); }
    const la = Math.log(za), lb = Math.log(zb);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      if (v === skip) continue;
      const lpa = a[o + v]! - ma - la, lpb = b[o + v]! - mb - lb;
      if (lpa > -Infinity) kl += Math.exp(lpa) * (lpa - lpb);
    }
    this.kl += kl;
    if (ia === ib) this.agree++;
    this.positions++;
  }

  get top1Agreement(): number { return this.agree / Math.max(1, this.positions); }
  get meanKl(): number { return this.kl / Math.max(1, this.positions); }
}

export async function precisionDrift(modelDir: string, prompts: number[][], params: GenerationParams, threads?: number): Promise<Drift> {
  const [ref, q] = await Promise.all([DirectRunner.open(modelDir, threads, 'fp32'), DirectRunner.open(modelDir, threads, 'int8')]);
  const m = ref.dir.manifest;
  const family = familyOf(m);
  if (!family) throw new Error(`${m.name}: family ${m.family} is not served`);
  const V = m.vocab_size;
  const maskId = m.noise?.type === 'masked' ? m.special_tokens.mask : null;
  const d = new LogitDrift(V, maskId); // SUBS: the sampler never predicts [MASK]
  let calls = 0;
  const fp32 = ref.runner, int8 = q.runner;
  const comparing: Runner = {
    vocabSize: V,
    run: async (role, feeds, outputs) => {
      const want = await fp32.run(role, feeds, outputs);
      const got = await int8.run(role, feeds, outputs);
      const a = want.logits!.data as Float32Array, b = got.logits!.data as Float32Array;
      const rows = a.length / V;
      const tokens = feeds.tokens;
      const sameShape = tokens !== undefined && tokens.data.length === rows;
      for (let p = 0; p < rows; p++) {
        if (maskId !== null && sameShape && (tokens.data as BigInt64Array)[p] !== BigInt(maskId)) continue;
        d.add(a, b, p);
      }
      calls++;
      return want; // decoding follows fp32, so both graphs always see the same feeds
    },
  };
  try {
    await ref.run(family, prompts, prompts.map((_, i) => ({ ...params, seed: params.seed + i })), { maxBatch: prompts.length, runner: comparing });
  } finally {
    await ref.close();
    await q.close();
  }
  return { calls, positions: d.positions, maxAbsDiff: d.maxAbsDiff, top1Agreement: d.top1Agreement, meanKl: d.meanKl };
}
