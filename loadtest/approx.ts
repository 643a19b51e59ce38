// kv_cache off / prefix / dual through the engine (EngineCore in this process, batch 1): tokens/s,
// network calls per token, Gen PPL under the judge and unigram entropy at each --lengths, with
// ratios against off in the same run (compare those, not absolute numbers across runs).
//
// The window is widened as bench:block widens BD3-LM's: the model directory is mirrored into a
// temporary one (links to the same files) whose max_length holds the prompt and the longest
// run, and each request's window (block_size) is its whole length, so a run is one window and
// the context every call attends over grows to prompt + length, as Fast-dLLM decodes. The
// default model was trained at 256 positions: past that its text is not good text, and Gen PPL
// there compares the modes with each other, not with the model's own quality.
//
// --layout engine instead keeps the model's own layout (windows of 128 sliding within its 256
// positions, the context cut to fit), where prefix keeps the context of the earlier windows.
//
// Sampler: confidence_topk at --per-call tokens per call (steps = length / per-call), at the
// model's temperature (1). Sample s (s from --first-sample) is prompt s mod 5 with seed s, and
// runs every mode in turn, the order rotating from sample to sample so the machine's changing
// load falls on all alike: the modes are paired on prompt and seed. Agreement: share of
// positions holding off's token at the same seed.
//
// Noise: a Gen PPL ratio from a few samples at temperature 1 is noisy, so each ratio carries a
// 90% interval from a paired bootstrap over the samples (2000 resamples, seeded), and a mode
// written off@S (off with every seed shifted by S: another seed set of the same policy) gives
// the spread between two equally good policies directly: ratios inside its distance from 1 are
// not differences.
//
// Runs can be split across processes (each its own --first-sample range, the same --modes, at
// the same time so they share the load) and merged: --out FILE writes the per-sample records,
// --from A,B,... prints the tables of their union (re-scored under the judge) without generating.
//
//   npm run bench:approx -- [--model models/zoo/default] [--lengths 128,512,1024] [--samples 3]
//        [--first-sample 0] [--per-call 4] [--modes off,prefix,dual] [--threads 1]
//        [--judge models/zoo/judge] [--layout widened|engine] [--out FILE] [--from FILES]
// A mode is kv[:R][/B][@S]: cache_refresh R, cache_block B, seeds shifted by S (off@S only).
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineCore } from '../engine/core.js';
import { Judge, unigramEntropy } from '../engine/eval/judge.js';
import { maskedModel } from '../engine/families/mdlm-family.js';
import { loadModelDir } from '../engine/manifest.js';
import type { DoneMsg, GenerationParams, KvCacheMode } from '../engine/protocol.js';
import { Rng } from '../engine/rng.js';
import { validateParams } from '../engine/validate.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/default' }, lengths: { type: 'string', default: '128,512,1024' },
    samples: { type: 'string', default: '3' }, 'per-call': { type: 'string', default: '4' },
    modes: { type: 'string', default: 'off,prefix,dual' }, threads: { type: 'string', default: '1' },
    judge: { type: 'string', default: 'models/zoo/judge' }, layout: { type: 'string', default: 'widened' },
    'first-sample': { type: 'string', default: '0' }, out: { type: 'string' }, from: { type: 'string' },
  },
  strict: true,
});

function int(name: 'samples' | 'per-call' | 'threads' | 'first-sample', min = 1): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${values[name]}'`);
  return n;
}
const LENGTHS = String(values.lengths).split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--lengths: '${s}' is not a positive integer`);
  return n;
});
const SAMPLES = int('samples');
const PER_CALL = int('per-call');
const THREADS = int('threads');
const FIRST = int('first-sample', 0);
const WIDEN = values.layout === 'widened';
if (!WIDEN && values.layout !== 'engine') throw new Error(`--layout must be widened or engine, got '${values.layout}'`);

interface Mode { kv: KvCacheMode; refresh?: number; block?: number; seedShift: number; label: string }
function parseMode(spec: string): Mode {
  const m = /^(off|prefix|dual)(?::(\d+))?(?:\/(\d+))?(?:@(\d+))?$/.exec(spec);
  if (!m) throw new Error(`--modes: '${spec}' is not kv[:R][/B][@S] with kv off, prefix or dual`);
  const kv = m[1] as KvCacheMode;
  const refresh = m[2] !== undefined ? Number(m[2]) : undefined;
  const block = m[3] !== undefined ? Number(m[3]) : undefined;
  const seedShift = m[4] !== undefined ? Number(m[4]) : 0;
  if (kv === 'off' && (refresh !== undefined || block !== undefined)) throw new Error(`--modes: '${spec}': :R and /B apply to prefix or dual`);
  if (kv !== 'off' && seedShift !== 0) throw new Error(`--modes: '${spec}': @S (another seed set) is for off, the noise band`);
  if (refresh === 0 || block === 0) throw new Error(`--modes: '${spec}': R and B must be positive`);
  const label = [kv, block !== undefined ? `block ${block}` : '', refresh !== undefined ? `refresh every ${refresh}` : '', seedShift ? `seeds + ${seedShift}` : '']
    .filter(Boolean).join(', ');
  return { kv, ...(refresh !== undefined ? { refresh } : {}), ...(block !== undefined ? { block } : {}), seedShift, label };
}
const MODE_SPECS = String(values.modes).split(',');
const MODES: Mode[] = MODE_SPECS.map(parseMode);
if (MODES[0]!.kv !== 'off' || MODES[0]!.seedShift !== 0) throw new Error('--modes must start with off (the baseline of the ratios)');

const PROMPTS = ['In the beginning', 'The old man said that', 'It was a dark night, and the', 'And the king of Israel', 'She opened the door'];
const src = loadModelDir(String(values.model));
const tok = TextTokenizer.fromFile(src.tokenizerPath);

/** One sample of one mode at one length: what --out writes and --from reads. */
interface Sample { tokens: number; mode: string; sample: number; prompt: number[]; ids: number[]; seconds: number; nfe: number }
interface RunFile { model: string; perCall: number; layout: string; threads: number; modes: string[]; maxLength: number; samples: Sample[] }

async function generateAll(): Promise<RunFile> {
  const sampleIds = Array.from({ length: SAMPLES }, (_, i) => FIRST + i);
  const prompts = new Map(await Promise.all(sampleIds.map(async (s) => [s, await tok.encode(PROMPTS[s % PROMPTS.length]!)] as const)));
  const longest = Math.max(...[...prompts.values()].map((p) => p.length)) + Math.max(...LENGTHS);

  // The widened mirror: the same files, a manifest whose max_length holds the longest run.
  const wide = mkdtempSync(join(tmpdir(), 'dlm-approx-'));
  for (const f of readdirSync(src.dir)) if (f !== 'model.json') symlinkSync(join(src.dir, f), join(wide, f));
  const maxLength = WIDEN ? Math.max(src.manifest.max_length, longest + 1) : src.manifest.max_length;
  writeFileSync(join(wide, 'model.json'), JSON.stringify({ ...src.manifest, max_length: maxLength }));

  const waiting = new Map<number, { tokens: number[]; resolve(d: DoneMsg): void }>();
  const core = await EngineCore.open({ modelDir: wide, device: 'cpu', threads: THREADS, maxBatch: 1 }, {
    commit: (id, t) => waiting.get(id)?.tokens.push(...t),
    step: () => {},
    error: (e) => { throw new Error(`engine error: ${e.message}`); },
    done: (d) => { const w = waiting.get(d.id); waiting.delete(d.id); w?.resolve(d); },
  });
  let nextId = 1;
  /** The engine's window when the request sets none (engine layout): steps are per window. */
  const window = maskedModel(loadModelDir(wide).manifest).defaultWindow;

  async function generate(prompt: number[], params: GenerationParams): Promise<{ ids: number[]; seconds: number; nfe: number }> {
    validateParams(core.model, params);
    const id = nextId++;
    const ids: number[] = [];
    const t0 = performance.now();
    const done = await new Promise<DoneMsg>((resolve) => {
      waiting.set(id, { tokens: ids, resolve });
      core.generate(id, prompt, params);
    });
    if (done.reason !== 'length') throw new Error(`request ended with ${done.reason}`);
    return { ids, seconds: (performance.now() - t0) / 1000, nfe: done.usage.nfe };
  }

  const params = (n: number, mode: Mode, seed: number): GenerationParams => ({
    maxTokens: n, sampler: 'confidence_topk', steps: Math.max(1, Math.ceil(Math.min(n, WIDEN ? n : window) / PER_CALL)), temperature: core.model.defaults.temperature,
    topP: 1, topK: 0, seed: seed + mode.seedShift, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...(WIDEN ? { blockSize: n } : {}),
    ...(mode.kv !== 'off' ? { kvCache: mode.kv } : {}), ...(mode.refresh !== undefined ? { cacheRefresh: mode.refresh } : {}),
    ...(mode.block !== undefined ? { cacheBlock: mode.block } : {}),
  });

  // Warm-up: both graphs' first calls allocate and plan; no mode should pay that inside its timing.
  const p0 = prompts.get(FIRST)!;
  await generate(p0, params(32, MODES[0]!, 0));
  await generate(p0, params(32, parseMode('prefix'), 0));

  console.log(`approx: ${src.manifest.name} through EngineCore, batch 1, ${THREADS} ORT thread(s), samples ${FIRST}-${FIRST + SAMPLES - 1}, ${WIDEN ? `window widened to each length (max_length ${maxLength})` : `the engine's own layout (windows of ${window} sliding in max_length ${maxLength})`}`);
  const out: Sample[] = [];
  for (const n of LENGTHS) {
    for (const [j, s] of sampleIds.entries()) {
      for (let k = 0; k < MODES.length; k++) {
        const i = (k + j) % MODES.length;
        const r = await generate(prompts.get(s)!, params(n, MODES[i]!, s));
        out.push({ tokens: n, mode: MODE_SPECS[i]!, sample: s, prompt: prompts.get(s)!, ...r });
        console.error(`  ${n} tokens, sample ${s}, ${MODES[i]!.label}: ${r.seconds.toFixed(1)} s`);
      }
    }
  }
  await core.close();
  rmSync(wide, { recursive: true, force: true });
  return { model: src.manifest.name, perCall: PER_CALL, layout: String(values.layout), threads: THREADS, modes: MODE_SPECS, maxLength, samples: out };
}

let runs: RunFile[];
if (values.from) {
  runs = String(values.from).split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunFile);
  for (const r of runs) {
    if (r.perCall !== runs[0]!.perCall || r.layout !== runs[0]!.layout || r.modes.join() !== runs[0]!.modes.join()) {
      throw new Error('--from: the files differ in --per-call, --layout or --modes; merge only runs of one command split by --first-sample');
    }
  }
} else {
  const run = await generateAll();
  if (values.out) writeFileSync(String(values.out), JSON.stringify(run));
  runs = [run];
}

/** 5th and 95th percentiles of f over 2000 resamples (with replacement) of the paired samples. */
function bootstrap(count: number, f: (picks: number[]) => number): [number, number] {
  const rng = new Rng(12345); // seeded, so a table prints the same twice
  const xs = Array.from({ length: 2000 }, () => f(Array.from({ length: count }, () => rng.int(count)))).sort((a, b) => a - b);
  return [xs[Math.floor(0.05 * xs.length)]!, xs[Math.floor(0.95 * xs.length)]!];
}

const first = runs[0]!;
const all = runs.flatMap((r) => r.samples);
const judge = await Judge.open(String(values.judge), THREADS);
const judged = new Map<Sample, { nll: number; n: number; entropy: number }>();
for (const x of all) {
  const r = await judge.nll(await tok.decode(x.prompt.concat(x.ids)));
  judged.set(x, { nll: r.nll, n: r.tokens, entropy: unigramEntropy(x.ids) });
}
await judge.close();

const fmt = (x: number, d: number): string => x.toFixed(d);
console.log(`approx: ${first.model}, ${first.layout} layout (max_length ${first.maxLength}), confidence_topk at ${first.perCall} tokens per call, batch 1, ${first.threads} ORT thread(s), ${runs.length} run(s) merged; x off with a paired-bootstrap 90% interval`);
console.log('| tokens | mode | samples | tokens/s | x off | NFE/token | agreement vs off | Gen PPL | x off | entropy |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
const rows: Record<string, unknown>[] = [];
for (const n of [...new Set(all.map((x) => x.tokens))]) {
  const at = (spec: string): Map<number, Sample> => new Map(all.filter((x) => x.tokens === n && x.mode === spec).map((x) => [x.sample, x]));
  const base = at(first.modes[0]!);
  const ids = [...base.keys()].sort((a, b) => a - b);
  const pooled = (m: Map<number, Sample>, picks: number[]) => {
    let tokens = 0, seconds = 0, nll = 0, judgedN = 0;
    for (const p of picks) {
      const x = m.get(ids[p]!)!;
      const q = judged.get(x)!;
      tokens += x.ids.length; seconds += x.seconds; nll += q.nll; judgedN += q.n;
    }
    return { tps: tokens / seconds, ppl: Math.exp(nll / Math.max(1, judgedN)) };
  };
  const everyone = ids.map((_, i) => i);
  const b = pooled(base, everyone);
  for (const [i, spec] of first.modes.entries()) {
    const m = at(spec);
    if (ids.some((s) => !m.has(s))) throw new Error(`${n} tokens: mode ${spec} lacks some of off's samples`);
    const rs = ids.map((s) => m.get(s)!);
    const p = pooled(m, everyone);
    const ratio = (picks: number[], key: 'tps' | 'ppl'): number => pooled(m, picks)[key] / pooled(base, picks)[key];
    const [sLo, sHi] = bootstrap(ids.length, (picks) => ratio(picks, 'tps'));
    const [qLo, qHi] = bootstrap(ids.length, (picks) => ratio(picks, 'ppl'));
    const same = rs.reduce((a, x) => a + x.ids.filter((t, j) => t === base.get(x.sample)!.ids[j]).length, 0) / rs.reduce((a, x) => a + x.ids.length, 0);
    const nfe = rs.reduce((a, x) => a + x.nfe, 0) / rs.reduce((a, x) => a + x.ids.length, 0);
    const entropy = rs.reduce((a, x) => a + judged.get(x)!.entropy, 0) / rs.length;
    const row = {
      tokens: n, mode: spec, label: parseMode(spec).label, samples: ids.length, tokens_per_s: p.tps, speedup: p.tps / b.tps, speedup_90: [sLo, sHi],
      nfe_per_token: nfe, agreement: same, gen_ppl: p.ppl, gen_ppl_ratio: p.ppl / b.ppl, gen_ppl_ratio_90: [qLo, qHi], entropy,
    };
    rows.push(row);
    console.log(`| ${n} | ${row.label} | ${ids.length} | ${fmt(p.tps, 1)} | ${i === 0 ? '1.00' : `${fmt(row.speedup, 2)} (${fmt(sLo, 2)}-${fmt(sHi, 2)})`} | ${fmt(nfe, 3)} | ${fmt(100 * same, 1)}% | ${fmt(p.ppl, 1)} | ${i === 0 ? '1.00' : `${fmt(row.gen_ppl_ratio, 2)} (${fmt(qLo, 2)}-${fmt(qHi, 2)})`} | ${fmt(entropy, 2)} |`);
  }
}
console.log(JSON.stringify({ model: first.model, perCall: first.perCall, layout: first.layout, rows }));
