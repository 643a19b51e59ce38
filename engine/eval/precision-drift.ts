// How far a model's int8 graphs drift from its fp32 graphs on the inputs real decoding feeds
// them. The fp32 sessions decode real prompts through the real scheduler and family (so every
// network call sees exactly what the sampler would: real text, masked or noised as the family
// does it, KV caches of committed blocks); each call's feeds also go through the int8 sessions,
// and the two logits are compared position by position where the sampler reads them (positions
// whose input is [MASK] in masked families; every position otherwise).
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../device-session.js';
import { familyOf } from '../families/registry.js';
import { loadModelDir, type Precision } from '../manifest.js';
import { pickPrecision } from '../precision.js';
import type { GenerationParams } from '../protocol.js';
import { Scheduler, type Runner } from '../scheduler.js';
import { sessionRunner } from '../session-runner.js';

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

async function open(dir: string, precision: Precision, threads?: number): Promise<Map<string, ort.InferenceSession>> {
  const pick = pickPrecision(loadModelDir(dir), precision, 'cpu');
  const sessions = new Map<string, ort.InferenceSession>();
  for (const [role, path] of Object.entries(pick.graphPaths)) sessions.set(role, await openDeviceSession(path, 'cpu', threads !== undefined ? { threads } : {}));
  return sessions;
}

export async function precisionDrift(modelDir: string, prompts: number[][], params: GenerationParams, threads?: number): Promise<Drift> {
  const md = loadModelDir(modelDir);
  const m = md.manifest;
  const family = familyOf(m);
  if (!family) throw new Error(`${m.name}: family ${m.family} is not served`);
  const [fp32, int8] = await Promise.all([open(modelDir, 'fp32', threads), open(modelDir, 'int8', threads)]);
  const ref = sessionRunner(m, fp32);
  const q = sessionRunner(m, int8);
  const V = m.vocab_size;
  const maskId = m.noise?.type === 'masked' ? m.special_tokens.mask : null;
  const d = { calls: 0, positions: 0, maxAbsDiff: 0, agree: 0, kl: 0 };
  const compare = (a: Float32Array, b: Float32Array, p: number): void => {
    let ia = 0, ib = 0, ma = -Infinity, mb = -Infinity;
    for (let v = 0; v < V; v++) {
      if (v === maskId) continue; // SUBS: the sampler never predicts [MASK]
      const x = a[p * V + v]!, y = b[p * V + v]!;
      if (x !== y) d.maxAbsDiff = Math.max(d.maxAbsDiff, Math.abs(x - y)); // equal -inf (a masked-out id) is no drift
      if (x > ma) { ma = x; ia = v; }
      if (y > mb) { mb = y; ib = v; }
    }
    let za = 0, zb = 0;
    for (let v = 0; v < V; v++) if (v !== maskId) { za += Math.exp(a[p * V + v]! - ma); zb += Math.exp(b[p * V + v]! - mb); }
    const la = Math.log(za), lb = Math.log(zb);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      if (v === maskId) continue;
      const lpa = a[p * V + v]! - ma - la, lpb = b[p * V + v]! - mb - lb;
      if (lpa > -Infinity) kl += Math.exp(lpa) * (lpa - lpb);
    }
    d.kl += kl;
    if (ia === ib) d.agree++;
    d.positions++;
  };
  const runner: Runner = {
    vocabSize: V,
    run: async (role, feeds, outputs) => {
      const want = await ref.run(role, feeds, outputs);
      const got = await q.run(role, feeds, outputs);
      const a = want.logits!.data as Float32Array, b = got.logits!.data as Float32Array;
      const rows = a.length / V;
      const tokens = feeds.tokens;
      const sameShape = tokens !== undefined && tokens.data.length === rows;
      for (let p = 0; p < rows; p++) {
        if (maskId !== null && sameShape && (tokens.data as BigInt64Array)[p] !== BigInt(maskId)) continue;
        compare(a, b, p);
      }
      d.calls++;
      return want;
    },
  };
  const failures: unknown[] = [];
  let left = prompts.length;
  let finished!: () => void;
  const done = new Promise<void>((r) => { finished = r; });
  const scheduler = new Scheduler(runner, {
    finished: () => { if (--left === 0) finished(); },
    failed: (_s, err) => { failures.push(err); },
    call: () => {},
  }, prompts.length, prompts.length);
  prompts.forEach((p, i) => {
    family.validate(params, m);
    scheduler.submit(family.create(i, p, { ...params, seed: params.seed + i }, { manifest: m, sink: { commit: () => {}, step: () => {} } }));
  });
  const loop = scheduler.loop();
  await done;
  scheduler.close();
  await loop;
  for (const s of [...fp32.values(), ...int8.values()]) await s.release();
  if (failures.length > 0) throw failures[0];
  return { calls: d.calls, positions: d.positions, maxAbsDiff: d.maxAbsDiff, top1Agreement: d.agree / Math.max(1, d.positions), meanKl: d.kl / Math.max(1, d.positions) };
}
