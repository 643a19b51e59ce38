// Whole-sequence MDLM with Fast-dLLM's approximate caches, measured on the graphs alone (no
// engine: a minimal decode loop over onnxruntime-node sessions, loadtest/kv-model.ts), so the
// engine wiring of issue 15 knows what it would buy. One run; compare the ratios, not absolute
// numbers across runs or machines.
//
// Modes run in lockstep (one call each in turn) and each times only its own steps, so the
// machine's changing load falls on all alike. Decoding, for every mode alike: the window is cut into sub-blocks of --sub tokens decoded left
// to right; each call proposes the arg max (temperature 0; --temperature draws with the same seed
// in every mode) at the current sub-block's masked positions and commits them by the confidence
// threshold --tau (at least one per call), by the EB-sampler's bound (--rule eb --gamma), or
// as confidence top-k over --steps calls per sub-block (--rule topk: a fixed rate, the engine's
// default sampler's).
//   off    the plain denoiser over context + window at every call (what the engine does today).
//   prefix at a sub-block's first call, the kv graph over everything (empty cache) and its K/V
//          kept; later calls query the sub-block and everything after it against the cached K/V
//          of the context and the finished sub-blocks.
//   dual   as prefix, but later calls query the sub-block alone against the cached K/V of all
//          other positions, the still-masked suffix included.
// A mode written prefix:R or dual:R also recomputes the cache every R calls inside a sub-block.
// Agreement is measured against the first mode of --modes (off by default).
// Agreement: the share of generated positions holding off's token at the same seed, and the
// first position that differs (after it the two texts condition on different tokens), and the
// text's Gen PPL and unigram entropy under models/zoo/judge (one sample per mode). prefix:1
// (the cache recomputed at every call) is exact: it shows what float noise alone changes.
//
// Two layouts: the engine's (windows of --window tokens, the context cut to fit max_length, the
// window sliding until the length is reached) and, with --widen, one window of the whole length
// as Fast-dLLM decodes (past max_length: its text is not good, only the cost and agreement count).
//
//   npm run bench:approx-graphs -- [--model models/zoo/default] [--lengths 128,512] [--window 128]
//        [--sub 32] [--tau 0.9] [--rule threshold|eb] [--gamma 1] [--temperature 0] [--seed 0]
//        [--widen] [--threads N] [--prompt TEXT]
//        [--modes off,prefix,dual,dual:4] [--rule topk --steps 16]
import { parseArgs } from 'node:util';
import { Judge, score } from '../engine/eval/judge.js';
import { loadModelDir } from '../engine/manifest.js';
import { selectPositions } from '../engine/kv-positions.js';
import { Rng } from '../engine/rng.js';
import { propose, selectEntropyBounded, selectThreshold, type Proposal } from '../engine/samplers/adaptive.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { KvModel, type KvPast } from './kv-model.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/default' }, lengths: { type: 'string', default: '128,512' },
    window: { type: 'string', default: '128' }, sub: { type: 'string', default: '32' }, tau: { type: 'string', default: '0.9' },
    rule: { type: 'string', default: 'threshold' }, gamma: { type: 'string', default: '1' },
    temperature: { type: 'string', default: '0' }, seed: { type: 'string', default: '0' }, widen: { type: 'boolean', default: false },
    threads: { type: 'string', default: '0' }, prompt: { type: 'string', default: 'In the beginning' },
    modes: { type: 'string', default: 'off,prefix,dual' }, judge: { type: 'string', default: 'models/zoo/judge' }, steps: { type: 'string', default: '16' },
  },
  strict: true,
});

function num(name: string, min: number, integer = true): number {
  const raw = String(values[name as keyof typeof values]);
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
  return n;
}
const LENGTHS = String(values.lengths).split(',').map((s) => { const n = Number(s); if (!Number.isInteger(n) || n < 1) throw new Error(`--lengths: '${s}'`); return n; });
const WINDOW = num('window', 1);
const SUB = num('sub', 1);
const TAU = num('tau', 0, false);
const GAMMA = num('gamma', 0, false);
const TEMPERATURE = num('temperature', 0, false);
const SEED = num('seed', 0);
const RULE = String(values.rule);

type Kind = 'off' | 'prefix' | 'dual';
/** A cache mode, and how often (calls) it also recomputes the cache inside a sub-block (0: never). */
interface Mode { kind: Kind; refresh: number; label: string }
const MODES: Mode[] = String(values.modes).split(',').map((spec) => {
  const [kind, every = '0'] = spec.split(':');
  const refresh = Number(every);
  if ((kind !== 'off' && kind !== 'prefix' && kind !== 'dual') || !Number.isInteger(refresh) || refresh < 0) {
    throw new Error(`--modes: '${spec}' is not off, prefix[:R] or dual[:R]`);
  }
  return { kind, refresh, label: refresh > 0 ? `${kind}, refresh every ${refresh}` : kind };
});
const STEPS = num('steps', 1);
if (!['threshold', 'eb', 'topk'].includes(RULE)) throw new Error(`--rule must be threshold, eb or topk, got '${RULE}'`);

const model = await KvModel.open(String(values.model), num('threads', 0));
const md = loadModelDir(String(values.model));
const man = md.manifest;
const tok = TextTokenizer.fromFile(md.tokenizerPath);
const MASK = man.special_tokens.mask!;
const V = model.V;
const shaping = { temperature: TEMPERATURE, topK: 0, topP: 1 };
const prompt = await tok.encode(String(values.prompt));
// Gen PPL of each mode's text under the judge (--judge ''): one sample, so a rough signal.
const judge = values.judge ? await Judge.open(String(values.judge), num('threads', 0) || undefined) : null;
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** The proposals to commit; topk spreads the sub-block's masks over --steps calls (the engine's
 * default confidence_topk, as a fixed number of tokens per call). */
function choose(props: Proposal[], step: number): Proposal[] {
  if (RULE === 'eb') return selectEntropyBounded(props, GAMMA);
  if (RULE === 'threshold') return selectThreshold(props, TAU);
  const k = Math.min(props.length, Math.ceil(props.length / Math.max(1, STEPS - step)));
  return [...props].sort((a, b) => b.conf - a.conf || a.pos - b.pos).slice(0, k);
}

interface Run { tokens: number[]; calls: number; seconds: number; queried: number }

/**
 * Decodes `total` tokens after the prompt in windows of `window` into `run`, yielding after every
 * network call; `run.seconds` counts only its own steps (call + sampling), so modes stepped in
 * turn share the machine's load alike.
 */
async function* decode(mode: Mode, total: number, window: number, run: Run): AsyncGenerator<void> {
  const rng = new Rng(SEED);
  const generated = run.tokens;
  let t0 = performance.now();
  while (generated.length < total) {
    const W = Math.min(window, total - generated.length);
    const all = prompt.concat(generated);
    const context = window >= total ? all : all.slice(Math.max(0, all.length - (man.max_length - W)));
    const C = context.length;
    const seq = context.concat(new Array<number>(W).fill(MASK));
    const L = seq.length;
    const at = model.layout(L);
    let cache: KvPast | null = null;
    for (let s = 0; s < W; s += SUB) {
      const e = Math.min(W, s + SUB);
      for (let step = 0; seq.slice(C + s, C + e).includes(MASK); step++) {
        // Row r of `logits` is position r + first.
        let logits: Float32Array;
        let first: number;
        if (mode.kind === 'off') {
          logits = await model.denoise(seq);
          first = 0;
          run.queried += L;
        } else if (step === 0 || (mode.refresh > 0 && step % mode.refresh === 0)) {
          const out = await model.kv(seq, range(0, L));
          cache = out;
          logits = out.logits;
          first = 0;
          run.queried += L;
        } else {
          const qFrom = C + s;
          const qTo = mode.kind === 'prefix' ? L : C + e;
          const q = range(qFrom, qTo);
          const keep = range(0, L).filter((p) => p < qFrom || p >= qTo);
          const past = keep.length === 0 ? undefined
            : { keys: selectPositions(cache!.keys, at, keep), values: selectPositions(cache!.values, at, keep), length: keep.length };
          logits = (await model.kv(q.map((p) => seq[p]!), q, past)).logits;
          first = qFrom;
          run.queried += q.length;
        }
        run.calls++;
        const masked = range(C + s, C + e).filter((p) => seq[p] === MASK);
        const props = propose(logits, V, masked.map((p) => p - first), shaping, MASK, rng);
        for (const c of choose(props, step)) seq[c.pos + first] = c.tok;
        run.seconds += (performance.now() - t0) / 1000;
        yield;
        t0 = performance.now();
      }
    }
    generated.push(...seq.slice(C));
  }
  run.seconds += (performance.now() - t0) / 1000;
}

/** Every mode's decode, one call each in turn until all are done. */
async function lockstep(total: number, window: number): Promise<Run[]> {
  const runs = MODES.map((): Run => ({ tokens: [], calls: 0, seconds: 0, queried: 0 }));
  const gens = MODES.map((m, i) => decode(m, total, window, runs[i]!));
  const live = new Set(gens.keys());
  while (live.size > 0) {
    for (const i of [...live]) if ((await gens[i]!.next()).done) live.delete(i);
  }
  return runs;
}

// Warm-up: a session's first calls allocate and plan; no mode should pay them inside its timing.
for (const L of [32, man.max_length]) {
  const seq = new Array<number>(L).fill(MASK);
  await model.denoise(seq);
  await model.kv(seq, range(0, L));
}

const rows: Record<string, unknown>[] = [];
const configs: { total: number; window: number; label: string }[] = [];
for (const n of LENGTHS) {
  configs.push({ total: n, window: Math.min(WINDOW, n), label: n > WINDOW ? `sliding ${WINDOW}` : `one window` });
  if (values.widen && n > WINDOW) configs.push({ total: n, window: n, label: 'widened' });
}
console.log(`approx-graphs: ${man.name}, prompt ${prompt.length} tokens, sub-block ${SUB}, rule ${RULE === 'eb' ? `eb gamma ${GAMMA}` : RULE === 'topk' ? `confidence top-k, ${STEPS} calls per sub-block` : `threshold ${TAU}`}, temperature ${TEMPERATURE}, seed ${SEED}`);
console.log('| tokens | layout | mode | calls | tokens/call | query positions / token | tokens/s | x off | agreement vs off | first difference | Gen PPL | entropy |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const cfg of configs) {
  const runs = await lockstep(cfg.total, cfg.window);
  const base = runs[0]!;
  for (const [i, mode] of MODES.entries()) {
    const r = runs[i]!;
    let same = 0;
    for (let j = 0; j < r.tokens.length; j++) if (r.tokens[j] === base.tokens[j]) same++;
    const diverge = r.tokens.findIndex((x, j) => x !== base.tokens[j]);
    const tps = cfg.total / r.seconds;
    const ids = r.tokens.filter((x) => x !== MASK);
    const q = judge ? await score(judge, [{ text: await tok.decode(prompt.concat(ids)), ids }]) : null;
    const row = {
      tokens: cfg.total, layout: cfg.label, mode: mode.label, calls: r.calls, tokens_per_call: cfg.total / r.calls,
      queried_per_token: r.queried / cfg.total, tokens_per_s: tps, speedup: tps / (cfg.total / base.seconds), agreement: same / r.tokens.length,
      first_difference: diverge < 0 ? null : diverge, gen_ppl: q?.genPpl ?? null, entropy: q?.entropy ?? null,
    };
    rows.push(row);
    console.log(`| ${cfg.total} | ${cfg.label} | ${mode.label} | ${r.calls} | ${row.tokens_per_call.toFixed(2)} | ${row.queried_per_token.toFixed(1)} | ${tps.toFixed(1)} | ${row.speedup.toFixed(2)} | ${(100 * row.agreement).toFixed(1)}% | ${diverge < 0 ? 'none' : diverge} | ${q ? q.genPpl.toFixed(1) : '-'} | ${q ? q.entropy.toFixed(2) : '-'} |`);
  }
}
console.log(JSON.stringify({ model: man.name, rule: RULE, tau: TAU, gamma: GAMMA, sub: SUB, window: WINDOW, steps: STEPS, rows }));
await model.release();
await judge?.close();
