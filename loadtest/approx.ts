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
// model's temperature (1) with the sample's seed; each sample (a prompt and a seed) runs every
// mode in turn, the order rotating from sample to sample so the machine's changing load falls
// on all alike. Agreement: share of positions holding off's token at the same seed.
//
//   npm run bench:approx -- [--model models/zoo/default] [--lengths 128,512,1024] [--samples 3]
//        [--per-call 4] [--modes off,prefix,dual] [--threads 1] [--judge models/zoo/judge]
//        [--layout widened|engine]
// A mode written prefix:R or dual:R sets cache_refresh R.
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineCore } from '../engine/core.js';
import { Judge, score } from '../engine/eval/judge.js';
import { maskedModel } from '../engine/families/mdlm-family.js';
import { loadModelDir } from '../engine/manifest.js';
import type { DoneMsg, GenerationParams, KvCacheMode } from '../engine/protocol.js';
import { validateParams } from '../engine/validate.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/default' }, lengths: { type: 'string', default: '128,512,1024' },
    samples: { type: 'string', default: '3' }, 'per-call': { type: 'string', default: '4' },
    modes: { type: 'string', default: 'off,prefix,dual' }, threads: { type: 'string', default: '1' },
    judge: { type: 'string', default: 'models/zoo/judge' }, layout: { type: 'string', default: 'widened' },
  },
  strict: true,
});

function int(name: 'samples' | 'per-call' | 'threads'): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${values[name]}'`);
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
const WIDEN = values.layout === 'widened';
if (!WIDEN && values.layout !== 'engine') throw new Error(`--layout must be widened or engine, got '${values.layout}'`);

interface Mode { kv: KvCacheMode; refresh?: number; label: string }
const MODES: Mode[] = String(values.modes).split(',').map((spec) => {
  const [kv, every] = spec.split(':');
  if (kv !== 'off' && kv !== 'prefix' && kv !== 'dual') throw new Error(`--modes: '${spec}' is not off, prefix[:R] or dual[:R]`);
  if (every === undefined) return { kv, label: kv };
  const refresh = Number(every);
  if (kv === 'off' || !Number.isInteger(refresh) || refresh < 1) throw new Error(`--modes: '${spec}': R must be a positive integer, on prefix or dual`);
  return { kv, refresh, label: `${kv}, refresh every ${refresh}` };
});
if (MODES[0]!.kv !== 'off') throw new Error('--modes must start with off (the baseline of the ratios)');

const PROMPTS = ['In the beginning', 'The old man said that', 'It was a dark night, and the', 'And the king of Israel', 'She opened the door'];
const src = loadModelDir(String(values.model));
const tok = TextTokenizer.fromFile(src.tokenizerPath);
const prompts = await Promise.all(Array.from({ length: SAMPLES }, (_, i) => tok.encode(PROMPTS[i % PROMPTS.length]!)));
const longest = Math.max(...prompts.map((p) => p.length)) + Math.max(...LENGTHS);

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

interface Run { tokens: number[]; seconds: number; nfe: number }
async function generate(prompt: number[], params: GenerationParams): Promise<Run> {
  validateParams(core.model, params);
  const id = nextId++;
  const tokens: number[] = [];
  const t0 = performance.now();
  const done = await new Promise<DoneMsg>((resolve) => {
    waiting.set(id, { tokens, resolve });
    core.generate(id, prompt, params);
  });
  if (done.reason !== 'length') throw new Error(`request ended with ${done.reason}`);
  return { tokens, seconds: (performance.now() - t0) / 1000, nfe: done.usage.nfe };
}

function params(n: number, mode: Mode, seed: number): GenerationParams {
  return {
    maxTokens: n, sampler: 'confidence_topk', steps: Math.max(1, Math.ceil(Math.min(n, WIDEN ? n : window) / PER_CALL)), temperature: core.model.defaults.temperature,
    topP: 1, topK: 0, seed, ignoreEos: true, stopTokenIds: [], streamSteps: false, ...(WIDEN ? { blockSize: n } : {}),
    ...(mode.kv !== 'off' ? { kvCache: mode.kv } : {}), ...(mode.refresh !== undefined ? { cacheRefresh: mode.refresh } : {}),
  };
}

// Warm-up: both graphs' first calls allocate and plan; no mode should pay that inside its timing.
await generate(prompts[0]!, params(32, MODES[0]!, 0));
await generate(prompts[0]!, params(32, { kv: 'prefix', label: '' }, 0));

const judge = values.judge ? await Judge.open(String(values.judge), THREADS) : null;
console.log(`approx: ${src.manifest.name} through EngineCore, batch 1, ${THREADS} ORT thread(s), confidence_topk at ${PER_CALL} tokens per call, temperature ${core.model.defaults.temperature}, ${SAMPLES} sample(s) per length, ${WIDEN ? `window widened to each length (max_length ${maxLength})` : `the engine's own layout (windows of ${window} sliding in max_length ${maxLength})`}`);
console.log('| tokens | mode | tokens/s | x off | NFE/token | agreement vs off | Gen PPL | x off | entropy |');
console.log('|---|---|---|---|---|---|---|---|---|');
const rows: Record<string, unknown>[] = [];
for (const n of LENGTHS) {
  const runs = MODES.map((): Run[] => []);
  for (let s = 0; s < SAMPLES; s++) {
    for (let k = 0; k < MODES.length; k++) {
      const i = (k + s) % MODES.length;
      runs[i]![s] = await generate(prompts[s]!, params(n, MODES[i]!, s));
    }
  }
  const sum = (rs: Run[], f: (r: Run) => number): number => rs.reduce((a, r) => a + f(r), 0);
  const quality = async (rs: Run[]): Promise<{ genPpl: number; entropy: number } | null> =>
    judge ? score(judge, await Promise.all(rs.map(async (r, s) => ({ text: await tok.decode(prompts[s]!.concat(r.tokens)), ids: r.tokens })))) : null;
  const base = runs[0]!;
  const baseTps = sum(base, (r) => r.tokens.length) / sum(base, (r) => r.seconds);
  const baseQ = await quality(base);
  for (const [i, mode] of MODES.entries()) {
    const rs = runs[i]!;
    const tps = sum(rs, (r) => r.tokens.length) / sum(rs, (r) => r.seconds);
    const same = sum(rs, (r) => r.tokens.filter((t, j) => t === base[rs.indexOf(r)]!.tokens[j]).length) / sum(rs, (r) => r.tokens.length);
    const q = i === 0 ? baseQ : await quality(rs);
    const row = {
      tokens: n, mode: mode.label, tokens_per_s: tps, speedup: tps / baseTps, nfe_per_token: sum(rs, (r) => r.nfe) / sum(rs, (r) => r.tokens.length),
      agreement: same, gen_ppl: q?.genPpl ?? null, gen_ppl_ratio: q && baseQ ? q.genPpl / baseQ.genPpl : null, entropy: q?.entropy ?? null,
    };
    rows.push(row);
    console.log(`| ${n} | ${mode.label} | ${tps.toFixed(1)} | ${row.speedup.toFixed(2)} | ${row.nfe_per_token.toFixed(3)} | ${(100 * same).toFixed(1)}% | ${q ? q.genPpl.toFixed(1) : '-'} | ${row.gen_ppl_ratio !== null ? row.gen_ppl_ratio.toFixed(2) : '-'} | ${q ? q.entropy.toFixed(2) : '-'} |`);
  }
}
console.log(JSON.stringify({ model: src.manifest.name, perCall: PER_CALL, samples: SAMPLES, threads: THREADS, rows }));
await core.close();
await judge?.close();
rmSync(wide, { recursive: true, force: true });
