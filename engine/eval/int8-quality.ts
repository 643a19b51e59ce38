// npm run int8-quality -- [--model models/zoo/default] [--graph LABEL=FILE]... [--windows 128]
//                         [--draws 2] [--samples 32] [--no-speed] [--card] [--json OUT]
// How much an int8 graph of a masked-diffusion model (MDLM) loses against its fp32 graph, with
// noise small enough that "within 5%" means something:
//  - NELBO on held-out text (engine/eval/held-out.ts: the corpus' validation documents), paired:
//    every window gets the same noise level and the same masked positions at both precisions
//    (seeded, stratified over t as training validates), so the difference carries no sampling
//    noise of its own; its standard error over windows is printed beside it.
//  - drift on those real inputs: top-1 agreement, mean KL(fp32 || int8), max |logit difference|
//    over the masked positions (where the sampler reads the logits).
//  - speed of one forward at [1,65], [1,257], [16,65], [16,257], interleaved, best of 5, as a
//    ratio against fp32 measured in the same rounds.
//  - Gen PPL of the served variant (through the engine, as the card samples) with --samples
//    samples per seed set and two seed sets per precision, so the fp32-vs-fp32 difference
//    between seed sets (the band) sits beside the int8-vs-fp32 one.
// --graph adds candidate files (a variant written by models/dlm/quantize.py with other options)
// to compare beside the manifest's variant; --card writes the result as the card's
// "int8 quality" section.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { openablePaths } from '../derived-graph.js';
import { loadModelDir } from '../manifest.js';
import { pickPrecision } from '../precision.js';
import { Rng } from '../rng.js';
import { TextTokenizer } from '../../tokenizer/tokenizer.js';
import { heldOutWindows } from './held-out.js';
import { LogitDrift } from './precision-drift.js';
import { sampleAndScore } from './yardstick.js';
import { upsertSection } from './card-section.js';

export interface GraphQuality {
  label: string;
  file: string;
  /** Mean NELBO over windows and draws, nats per token. */
  nelbo: number;
  /** Mean paired NELBO difference from fp32 and its standard error (over window draws). */
  dNelbo: number;
  dNelboSe: number;
  top1Agreement: number;
  meanKl: number;
  maxAbsDiff: number;
  /** Shape "BxL" -> best milliseconds of one forward; and the ratio fp32 ms / this ms. */
  ms: Record<string, number>;
  speedup: Record<string, number>;
}

const SHAPES: [number, number][] = [[1, 65], [1, 257], [16, 65], [16, 257]];

interface Draw { x0: number[]; xt: BigInt64Array; masked: Uint8Array; weight: number }

/** Seeded noised copies of the windows: draw d uses t = (u_d + w / W) mod 1, MDLM's antithetic t. */
function draws(windows: number[][], count: number, maskId: number, eps: number, seed: number): Draw[] {
  const out: Draw[] = [];
  for (let d = 0; d < count; d++) {
    const rng = new Rng(seed + d);
    const u = rng.next();
    windows.forEach((x0, w) => {
      const t = Math.max((u + w / windows.length) % 1, 1e-6);
      const move = (1 - eps) * t; // 1 - exp(-sigma(t)) under the log-linear schedule
      const xt = new BigInt64Array(x0.length);
      const masked = new Uint8Array(x0.length);
      x0.forEach((id, i) => { masked[i] = rng.next() < move ? 1 : 0; xt[i] = BigInt(masked[i] ? maskId : id); });
      // sigma'(t) / expm1(sigma(t)), the continuous-time weight of a masked position (= 1 / t here).
      const weight = ((1 - eps) / (1 - move)) / Math.expm1(-Math.log1p(-move));
      out.push({ x0, xt, masked, weight });
    });
  }
  return out;
}

async function forward(s: ort.InferenceSession, tokens: BigInt64Array, B: number, L: number): Promise<Float32Array> {
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', tokens, [B, L]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(B * L).fill(1n), [B, L]),
  };
  const out = await s.run(feeds);
  return out[s.outputNames[0]!]!.data as Float32Array;
}

/** -log p(x0) summed over a draw's masked positions, weighted, per token (SUBS: no [MASK]). */
function drawNelbo(out: Float32Array, r: number, d: Draw, V: number, maskId: number): number {
  const L = d.x0.length;
  let sum = 0;
  for (let p = 0; p < L; p++) {
    if (!d.masked[p]) continue;
    const row = (r * L + p) * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) if (v !== maskId && out[row + v]! > m) m = out[row + v]!;
    let z = 0;
    for (let v = 0; v < V; v++) if (v !== maskId) z += Math.exp(out[row + v]! - m);
    sum += (m + Math.log(z) - out[row + d.x0[p]!]!) * d.weight;
  }
  return sum / L;
}

/**
 * Every graph on the same draws, a batch at a time (all logits at once would be ~1 GB): per graph
 * its per-draw NELBO, and for all but the first its drift from the first over masked positions.
 */
async function evaluate(sessions: ort.InferenceSession[], ds: Draw[], V: number, maskId: number, batch: number): Promise<{ nelbo: number[][]; drift: LogitDrift[] }> {
  const nelbo = sessions.map(() => [] as number[]);
  const drift = sessions.map(() => new LogitDrift(V, maskId));
  const L = ds[0]!.x0.length;
  for (let i = 0; i < ds.length; i += batch) {
    const chunk = ds.slice(i, i + batch);
    const tokens = new BigInt64Array(chunk.length * L);
    chunk.forEach((d, r) => tokens.set(d.xt, r * L));
    let ref: Float32Array | undefined;
    for (const [k, s] of sessions.entries()) {
      const out = await forward(s, tokens, chunk.length, L);
      chunk.forEach((d, r) => {
        nelbo[k]!.push(drawNelbo(out, r, d, V, maskId));
        if (ref) for (let p = 0; p < L; p++) if (d.masked[p]) drift[k]!.add(ref, out, r * L + p);
      });
      ref ??= out;
    }
  }
  return { nelbo, drift };
}

/** Best ms of one forward per shape, the graphs interleaved within each round. */
async function speeds(sessions: ort.InferenceSession[], tokens: number[], rounds = 5): Promise<Record<string, number>[]> {
  const best = sessions.map(() => ({} as Record<string, number>));
  for (const [B, L] of SHAPES) {
    const feed = new BigInt64Array(B * L);
    for (let i = 0; i < feed.length; i++) feed[i] = BigInt(tokens[i % tokens.length]!);
    for (const s of sessions) await forward(s, feed, B, L); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const [k, s] of sessions.entries()) {
        const t0 = performance.now();
        await forward(s, feed, B, L);
        const ms = performance.now() - t0;
        const key = `${B}x${L}`;
        best[k]![key] = Math.min(best[k]![key] ?? Infinity, ms);
      }
    }
  }
  return best;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
function se(xs: number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1) / Math.max(1, xs.length));
}

export interface GenPplBand { samples: number; maxTokens: number; sampler: string; steps: number; fp32: [number, number]; int8: [number, number] }

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/zoo/default' }, judge: { type: 'string', default: 'models/zoo/judge' },
      graph: { type: 'string', multiple: true, default: [] }, windows: { type: 'string', default: '128' },
      draws: { type: 'string', default: '2' }, batch: { type: 'string', default: '8' }, samples: { type: 'string', default: '32' },
      'no-speed': { type: 'boolean', default: false }, card: { type: 'boolean', default: false }, json: { type: 'string' },
      threads: { type: 'string' }, seed: { type: 'string', default: '1234' },
    },
  });
  const md = loadModelDir(values.model!);
  const m = md.manifest;
  if (m.noise?.type !== 'masked' || m.family !== 'mdlm') throw new Error(`${m.name}: int8-quality measures masked-diffusion (mdlm) denoisers; other families: test/int8-quality.test.ts`);
  const V = m.vocab_size, maskId = m.special_tokens.mask;
  if (maskId === null || maskId === undefined) throw new Error(`${m.name}: no [MASK] id in special_tokens`);
  const tok = TextTokenizer.fromFile(md.tokenizerPath);
  const L = m.max_length;
  const windows = (await heldOutWindows((t) => tok.encode(t), m.special_tokens.eos, L, Number(values.windows))).map((w) => w.ids);
  const ds = draws(windows, Number(values.draws), maskId, m.noise.eps, Number(values.seed));
  const served = (await openablePaths(pickPrecision(md, 'int8', 'cpu'))).denoiser!;
  const graphs: { label: string; file: string }[] = [
    { label: 'fp32', file: md.graphPaths.denoiser! },
    { label: 'int8 (served)', file: served },
    ...values.graph!.map((g) => { const at = g.indexOf('='); return at > 0 ? { label: g.slice(0, at), file: g.slice(at + 1) } : { label: g, file: g }; }),
  ];
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', ...(values.threads ? { intraOpNumThreads: Number(values.threads) } : {}) };
  const sessions: ort.InferenceSession[] = [];
  for (const g of graphs) sessions.push(await ort.InferenceSession.create(g.file, opts));
  const ev = await evaluate(sessions, ds, V, maskId, Number(values.batch));
  const ref = ev.nelbo[0]!;
  const results: GraphQuality[] = graphs.map((g, k) => {
    const diff = ev.nelbo[k]!.map((x, i) => x - ref[i]!);
    const d = ev.drift[k]!;
    const q = { label: g.label, file: g.file, nelbo: mean(ev.nelbo[k]!), dNelbo: mean(diff), dNelboSe: se(diff), top1Agreement: k === 0 ? 1 : d.top1Agreement, meanKl: d.meanKl, maxAbsDiff: d.maxAbsDiff, ms: {}, speedup: {} };
    console.error(`${g.label}: NELBO ${q.nelbo.toFixed(4)} (paired diff ${q.dNelbo.toFixed(4)} +- ${q.dNelboSe.toFixed(4)}), top-1 ${q.top1Agreement.toFixed(4)}, KL ${q.meanKl.toExponential(2)}, max |dlogit| ${q.maxAbsDiff.toFixed(3)}`);
    return q;
  });
  const fp32NelboSe = se(ref);
  if (!values['no-speed']) {
    const ms = await speeds(sessions, windows[0]!);
    results.forEach((r, k) => { r.ms = ms[k]!; for (const key of Object.keys(r.ms)) r.speedup[key] = ms[0]![key]! / r.ms[key]!; });
  }
  for (const s of sessions) await s.release();
  let genPpl: GenPplBand | undefined;
  const n = Number(values.samples);
  if (n > 0) {
    const one = (precision: 'fp32' | 'int8', seed: number) => sampleAndScore({ model: values.model!, judge: values.judge!, samples: n, maxTokens: m.defaults.max_tokens ?? 64, precision, seed, threads: values.threads ? Number(values.threads) : undefined });
    const a32 = await one('fp32', 0), a8 = await one('int8', 0), b32 = await one('fp32', 1000), b8 = await one('int8', 1000);
    genPpl = { samples: n, maxTokens: a32.maxTokens, sampler: a32.sampler, steps: a32.steps, fp32: [a32.genPpl, b32.genPpl], int8: [a8.genPpl, b8.genPpl] };
  }
  const report = { model: m.name, windows: windows.length, length: L, draws: Number(values.draws), fp32NelboSe, graphs: results, genPpl };
  console.log(JSON.stringify(report, null, 1));
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 1) + '\n');
  if (values.card) {
    const path = join(md.dir, 'card.md');
    writeFileSync(path, upsertSection(readFileSync(path, 'utf8'), '## int8 quality', cardSection(report)));
  }
}

function cardSection(r: { windows: number; length: number; draws: number; fp32NelboSe: number; graphs: GraphQuality[]; genPpl?: GenPplBand }): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}%`;
  const rows = r.graphs.map((g) => g.label === 'fp32'
    ? `| fp32 | ${g.nelbo.toFixed(4)} | | | | | ${Object.values(g.ms).map((x) => x.toFixed(1)).join(' / ')} ms |`
    : `| ${g.label} | ${g.nelbo.toFixed(4)} | ${g.dNelbo >= 0 ? '+' : ''}${g.dNelbo.toFixed(4)} +- ${g.dNelboSe.toFixed(4)} (${pct(Math.exp(g.dNelbo) - 1)}) | ${g.top1Agreement.toFixed(3)} | ${g.meanKl.toFixed(4)} | ${g.maxAbsDiff.toFixed(2)} | ${Object.values(g.speedup).map((x) => `x${x.toFixed(2)}`).join(' / ')} |`);
  const gp = r.genPpl;
  const band = gp ? `
Gen PPL (${gp.samples} unconditional samples of ${gp.maxTokens} tokens per seed set, ${gp.sampler} ${gp.steps} steps,
seed sets 0.. and 1000.., judge \`models/zoo/judge\`): fp32 ${gp.fp32.map((x) => x.toFixed(2)).join(' and ')}, int8 ${gp.int8.map((x) => x.toFixed(2)).join(' and ')}.
fp32 against itself on the other seed set: ${pct(gp.fp32[1] / gp.fp32[0] - 1)} (the band sampling alone gives);
int8 against fp32, both seed sets pooled: ${pct((gp.int8[0] + gp.int8[1]) / (gp.fp32[0] + gp.fp32[1]) - 1)}.
` : '';
  return `## int8 quality

From one run of \`npm run int8-quality -- --card\` (engine/eval/int8-quality.ts) on this machine's shared CPU.
NELBO in nats/token on ${r.windows} held-out windows of ${r.length} tokens (the corpus' validation documents, Brown
and King James), ${r.draws} seeded noise draws each, the same masked positions at every precision: the
difference is paired (its standard error over window draws beside it; in brackets, the ratio of
the perplexity bounds exp(NELBO)). fp32's own NELBO has a standard error of ${r.fp32NelboSe.toFixed(4)} over these
draws, which the paired difference does not carry. Drift over the masked positions of those inputs.
Speed: one forward at [1,65] / [1,257] / [16,65] / [16,257], best of 5, against fp32 in the same rounds.

| graph | NELBO | paired diff from fp32 | top-1 agreement | mean KL | max abs dlogit | speed (fp32 ms; int8 x fp32) |
|---|---|---|---|---|---|---|
${rows.join('\n')}
${band}`;
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
