// The MDLM `denoiser_kv` graph (models/dlm/export_kv.py) through onnxruntime-node: it matches
// PyTorch on a random model (fp32 and fp16 weight storage, padded rows and past slots); a kv
// graph whose shared weights file changed is refused; and on the committed models (a) with an
// empty cache it equals the plain denoiser on a real prompt, (b) a cache computed from the same
// tokens reproduces the full forward for a prefix and a dual (prefix + suffix) cache, (c) a
// cache kept across a step in which window tokens changed differs from the exact forward only by
// the approximation Fast-dLLM makes, measured here and bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { loadModelDir, ManifestError, parseManifest } from '../engine/manifest.js';
import { selectPositions } from '../engine/kv-positions.js';
import { checkKvCases, type KvCase } from './helpers/kv-cases.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { KvModel, type KvOut } from '../loadtest/kv-model.js';
import { Rng } from '../engine/rng.js';
import { duoPlan, duoPrior, duoStep } from '../engine/samplers/duo.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const ZOO = join(REPO, 'models', 'zoo');
const TOL = 1e-4;

interface Index {
  model: string;
  cases: KvCase[];
}

function worstDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i]! - b[i]!));
  return w;
}

// Duo's kv graph reads sigma as its denoiser does (--family duo): every case at each row's own sigma.
for (const family of ['mdlm', 'duo'] as const) for (const fp16 of [false, true]) {
  test(`${family} denoiser_kv matches PyTorch within ${TOL} and the plain denoiser (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlm-kv-parity-'));
    const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.parity_kv', '--family', family, '--out', dir, ...(fp16 ? ['--fp16-weights'] : [])],
      { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, `dlm.parity_kv failed: ${r.stderr}`);
    const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Index;
    assert.ok(index.cases.every((c) => (c.inputs.sigma !== undefined) === (family === 'duo')), 'sigma is fed exactly to the Duo graph');
    // No tokenizer in this directory, so the graphs are opened by path rather than loadModelDir.
    const kv = await ort.InferenceSession.create(join(index.model, 'denoiser_kv.onnx'));
    const plain = await ort.InferenceSession.create(join(index.model, 'denoiser.onnx'));
    const [full] = await checkKvCases(kv, dir, index.cases.filter((c) => c.name === 'full'), TOL);
    await checkKvCases(kv, dir, index.cases.filter((c) => c.name !== 'full'), TOL);
    // The same inputs through the plain denoiser graph: an empty cache changes nothing.
    const { feeds, out } = full!;
    const ref = await plain.run({ tokens: feeds.tokens!, attention_mask: feeds.attention_mask!, ...(feeds.sigma ? { sigma: feeds.sigma } : {}) });
    const a = ref.logits!.data as Float32Array;
    const b = out.logits!.data as Float32Array;
    const am = feeds.attention_mask!.data as BigInt64Array;
    const V = out.logits!.dims[2]!;
    let worst = 0;
    for (let i = 0; i < a.length; i++) if (am[Math.floor(i / V)] !== 0n) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst <= TOL, `kv graph with an empty cache vs the denoiser graph: ${worst}`);
    await Promise.all([kv.release(), plain.release()]);
  });
}

test('a kv graph whose shared weights file changed is refused, naming the field and the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-kv-stale-'));
  cpSync(join(ZOO, 'tiny-mdlm'), dir, { recursive: true });
  assert.ok(loadModelDir(dir).graphPaths.denoiser_kv);
  const graph = readFileSync(join(dir, 'denoiser.onnx'));
  graph[graph.length - 100] ^= 1;
  writeFileSync(join(dir, 'denoiser.onnx'), graph);
  assert.throws(() => loadModelDir(dir), (err: unknown) =>
    err instanceof ManifestError && err.field === 'graphs.denoiser_kv.weights_from.sha256' && /dlm\.export_kv/.test(err.message));
  // A serving load checks only the pins of graphs its family runs: no engine opens denoiser_kv
  // yet, so the model still serves (its plain denoiser is what changed, and is what runs).
  assert.equal(loadModelDir(dir, { served: true }).graphPaths.denoiser_kv, join(dir, 'denoiser_kv.onnx'));
  // A malformed pin is a schema error on the same field.
  const man = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { graphs: { denoiser_kv: { weights_from: { sha256: string } } } };
  man.graphs.denoiser_kv.weights_from.sha256 = 'not-a-hash';
  assert.throws(() => parseManifest(man), (err: unknown) => err instanceof ManifestError && err.field === 'graphs.denoiser_kv.weights_from.sha256');
});

/** Per query row: arg max agreement and mean KL(exact || approx) over the rows in `rows`. */
function compare(exact: Float32Array, approx: Float32Array, V: number, rows: readonly number[]): { agree: number; kl: number; maxAbs: number } {
  let agree = 0;
  let kl = 0;
  let maxAbs = 0;
  for (const r of rows) {
    const off = r * V;
    let ae = 0;
    let aa = 0;
    let me = -Infinity;
    let ma = -Infinity;
    for (let v = 0; v < V; v++) {
      const e = exact[off + v]!;
      const a = approx[off + v]!;
      if (e > exact[off + ae]!) ae = v;
      if (a > approx[off + aa]!) aa = v;
      me = Math.max(me, e);
      ma = Math.max(ma, a);
      maxAbs = Math.max(maxAbs, Math.abs(e - a));
    }
    if (ae === aa) agree++;
    let ze = 0;
    let za = 0;
    for (let v = 0; v < V; v++) { ze += Math.exp(exact[off + v]! - me); za += Math.exp(approx[off + v]! - ma); }
    for (let v = 0; v < V; v++) {
      const lpe = exact[off + v]! - me - Math.log(ze);
      const lpa = approx[off + v]! - ma - Math.log(za);
      kl += Math.exp(lpe) * (lpe - lpa);
    }
  }
  return { agree: agree / rows.length, kl: kl / rows.length, maxAbs };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** A zoo model's two graphs and the row both zoo tests decode: a real prompt and a 32-token window. */
async function zooRow(name: string) {
  const dir = join(ZOO, name);
  const m = await KvModel.open(dir);
  const tok = TextTokenizer.fromFile(loadModelDir(dir).tokenizerPath);
  const prompt = await tok.encode('The jury said that the city had been');
  const C = prompt.length;
  const W = 32;
  const L = C + W;
  return { m, prompt, C, W, L, V: m.V, at: m.layout(L), all: range(0, L) };
}

for (const name of ['tiny-mdlm', 'default']) {
  test(`models/zoo/${name}: denoiser_kv equals the denoiser, reuses an exact cache exactly, and a stale one approximately`, async (t) => {
    const { m, prompt, C, W, L, V, at, all } = await zooRow(name);
    const mask = m.manifest.special_tokens.mask!;
    const tokens = prompt.concat(new Array<number>(W).fill(mask));

    // (a) Empty cache, every position a query: the plain denoiser (same weights, another graph,
    // so only float summation order differs).
    const plain = await m.denoise(tokens);
    const first = await m.kv(tokens, all);
    const a = worstDiff(plain, first.logits);
    const scale = plain.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
    t.diagnostic(`(a) max |kv - denoiser| = ${a.toExponential(2)} (logits up to ${scale.toFixed(1)})`);
    assert.ok(a <= 2e-4 * scale, `(a) ${a}`);
    assert.equal(compare(plain, first.logits, V, all).agree, 1);

    // One step: commit the 8 window positions the model is most sure of (greedy).
    const conf = range(C, L).map((p) => {
      let best = 0;
      for (let v = 1; v < V; v++) if (v !== mask && first.logits[p * V + v]! > first.logits[p * V + best]!) best = v;
      return { p, best, score: first.logits[p * V + best]! };
    }).sort((x, y) => y.score - x.score);
    const next = [...tokens];
    for (const c of conf.slice(0, 8)) next[c.p] = c.best;
    const exact = await m.kv(next, all);
    const stillMasked = range(C, L).filter((p) => next[p] === mask);

    // (b) A cache of the same tokens: prefix (window queries, prompt cached) and dual (one
    // 16-token sub-block queried, prompt and the rest of the window cached) equal the full forward.
    const sub = range(C, C + 16);
    const rest = all.filter((p) => p < C || p >= C + 16);
    const slice = (o: KvOut, keep: number[]) => ({ keys: selectPositions(o.keys, at, keep), values: selectPositions(o.values, at, keep), length: keep.length });
    const window = range(C, L);
    const prefixSame = await m.kv(window.map((p) => next[p]!), window, slice(exact, range(0, C)));
    const dualSame = await m.kv(sub.map((p) => next[p]!), sub, slice(exact, rest));
    const rows = (o: Float32Array, ps: number[]) => Float32Array.from(ps.flatMap((p) => Array.from(o.subarray(p * V, (p + 1) * V))));
    const b1 = worstDiff(prefixSame.logits, rows(exact.logits, window));
    const b2 = worstDiff(dualSame.logits, rows(exact.logits, sub));
    t.diagnostic(`(b) same tokens: prefix cache ${b1.toExponential(2)}, dual cache ${b2.toExponential(2)}`);
    assert.ok(b1 <= TOL * Math.max(1, scale / 10) && b2 <= TOL * Math.max(1, scale / 10), `(b) ${b1} ${b2}`);

    // (c) The cache from before the step, reused after it: the prompt's (prefix) or the prompt's
    // and the rest of the window's (dual) keys and values no longer see the committed tokens.
    const prefixStale = await m.kv(window.map((p) => next[p]!), window, slice(first, range(0, C)));
    const dualStale = await m.kv(sub.map((p) => next[p]!), sub, slice(first, rest));
    const winMasked = stillMasked.map((p) => p - C);
    const subMasked = stillMasked.filter((p) => p < C + 16).map((p) => p - C);
    const cp = compare(rows(exact.logits, window), prefixStale.logits, V, winMasked);
    const cd = compare(rows(exact.logits, sub), dualStale.logits, V, subMasked);
    t.diagnostic(`(c) stale prefix cache over ${winMasked.length} masked positions: arg max agreement ${(100 * cp.agree).toFixed(1)}%, mean KL ${cp.kl.toExponential(2)} nats, max |dlogit| ${cp.maxAbs.toFixed(3)}`);
    t.diagnostic(`(c) stale dual cache over ${subMasked.length} masked positions: arg max agreement ${(100 * cd.agree).toFixed(1)}%, mean KL ${cd.kl.toExponential(2)} nats, max |dlogit| ${cd.maxAbs.toFixed(3)}`);
    assert.ok(cp.maxAbs > 10 * TOL && cd.maxAbs > 10 * TOL, 'a stale cache is really read (it must differ from the exact forward)');
    assert.ok(cd.kl >= cp.kl * 0.5, 'the dual cache holds more stale positions than the prefix cache');
    assert.ok(cp.agree >= 0.75 && cd.agree >= 0.6, `stale caches keep most arg maxes: prefix ${cp.agree}, dual ${cd.agree}`);
    assert.ok(cp.kl < 0.5 && cd.kl < 0.5, `stale caches stay close in distribution: prefix ${cp.kl}, dual ${cd.kl}`);
    await m.release();
  });
}

test('models/zoo/duo-brown: denoiser_kv equals the denoiser at a sigma, reuses an exact cache exactly, and one kept over a Duo step approximately', async (t) => {
  const { m, prompt, C, W, L, V, at, all } = await zooRow('duo-brown');
  assert.ok(m.timed);
  const eps = m.manifest.noise!.eps;
  const gen = new Rng(7);
  const rng = () => gen.next();
  const canvas = duoPrior(W, V, rng);
  const tokens = prompt.concat(Array.from(canvas));
  const plan0 = duoPlan(0, 32, eps);
  const plan1 = duoPlan(1, 32, eps);

  // (a) Empty cache, every position a query, at the first step's sigma: the plain denoiser.
  const plain = await m.denoise(tokens, plan0.sigma);
  const first = await m.kv(tokens, all, undefined, plan0.sigma);
  const a = worstDiff(plain, first.logits);
  const scale = plain.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
  t.diagnostic(`(a) max |kv - denoiser| = ${a.toExponential(2)} (logits up to ${scale.toFixed(1)})`);
  assert.ok(a <= 2e-4 * Math.max(1, scale), `(a) ${a}`);
  assert.equal(compare(plain, first.logits, V, all).agree, 1);

  // One Duo step: every canvas position redrawn from the posterior, and the next sigma.
  const next = Int32Array.from(canvas);
  duoStep({ sampler: 'duo', plan: plan0, logits: first.logits, canvasStart: C, V, canvas: next, x0: { temperature: 1, topP: 0.95, topK: 0 }, rng });
  const nextTokens = prompt.concat(Array.from(next));
  const changed = range(0, W).filter((i) => next[i] !== canvas[i]).length;
  t.diagnostic(`one step at sigma ${plan0.sigma.toFixed(2)} -> ${plan1.sigma.toFixed(2)} changed ${changed} of ${W} canvas tokens`);
  const exact = await m.kv(nextTokens, all, undefined, plan1.sigma);

  // (b) A cache of the same tokens at the same sigma: prefix (the prompt cached) and dual (one
  // 16-token sub-block queried) equal the full forward.
  const sub = range(C, C + 16);
  const rest = all.filter((p) => p < C || p >= C + 16);
  const window = range(C, L);
  const slice = (o: KvOut, keep: number[]) => ({ keys: selectPositions(o.keys, at, keep), values: selectPositions(o.values, at, keep), length: keep.length });
  const rows = (o: Float32Array, ps: number[]) => Float32Array.from(ps.flatMap((p) => Array.from(o.subarray(p * V, (p + 1) * V))));
  const b1 = worstDiff((await m.kv(window.map((p) => nextTokens[p]!), window, slice(exact, range(0, C)), plan1.sigma)).logits, rows(exact.logits, window));
  const b2 = worstDiff((await m.kv(sub.map((p) => nextTokens[p]!), sub, slice(exact, rest), plan1.sigma)).logits, rows(exact.logits, sub));
  t.diagnostic(`(b) same tokens and sigma: prefix cache ${b1.toExponential(2)}, dual cache ${b2.toExponential(2)}`);
  assert.ok(b1 <= TOL * Math.max(1, scale / 10) && b2 <= TOL * Math.max(1, scale / 10), `(b) ${b1} ${b2}`);

  // (c) The cache from before the step, reused after it: the prompt's keys/values (prefix) are
  // stale in sigma only; the rest of the window's (dual) in sigma and in their resampled tokens.
  const prefixStale = await m.kv(window.map((p) => nextTokens[p]!), window, slice(first, range(0, C)), plan1.sigma);
  const dualStale = await m.kv(sub.map((p) => nextTokens[p]!), sub, slice(first, rest), plan1.sigma);
  const cp = compare(rows(exact.logits, window), prefixStale.logits, V, range(0, W));
  const cd = compare(rows(exact.logits, sub), dualStale.logits, V, range(0, 16));
  t.diagnostic(`(c) stale prefix cache over ${W} positions: arg max agreement ${(100 * cp.agree).toFixed(1)}%, mean KL ${cp.kl.toExponential(2)} nats, max |dlogit| ${cp.maxAbs.toFixed(3)}`);
  t.diagnostic(`(c) stale dual cache over 16 positions: arg max agreement ${(100 * cd.agree).toFixed(1)}%, mean KL ${cd.kl.toExponential(2)} nats, max |dlogit| ${cd.maxAbs.toFixed(3)}`);
  assert.ok(cp.maxAbs > 10 * TOL && cd.maxAbs > 10 * TOL, 'a stale cache is really read (it must differ from the exact forward)');
  assert.ok(cp.kl < 0.5 && cd.kl < 0.5, `stale caches stay close in distribution: prefix ${cp.kl}, dual ${cd.kl}`);
  await m.release();
});
