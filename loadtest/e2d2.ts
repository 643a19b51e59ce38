// E2D2's speed against two baselines, all measured in this one run, batch 1, same output length:
//   1. a whole-sequence MDLM with the same width, total depth, vocabulary and length (random
//      weights: speed depends only on the shapes; EOS is ignored everywhere);
//   2. the same E2D2 model re-encoding its whole context before every decoder step (no cache).
// Configurations run round-robin after a warm-up so background load falls on all alike.
//
//   npm run bench:e2d2 -- [--model models/zoo/e2d2-brown] [--tokens 32,96] [--rounds 3] [--threads 1]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DirectRunner } from '../engine/direct-runner.js';
import { makeE2d2Family } from '../engine/families/e2d2-family.js';
import { mdlmFamily } from '../engine/families/mdlm-family.js';
import type { Family } from '../engine/families/family.js';
import type { GenerationParams } from '../engine/protocol.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/zoo/e2d2-brown' },
    tokens: { type: 'string', default: '32,96' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
  },
  strict: true,
});

const REPO = resolve(import.meta.dirname, '..', '..');

// A fresh block cache per run for E2D2: a shared one would otherwise serve later rounds'
// prompt from the first round, and the table measures decoding from a cold prompt.
interface Config { name: string; runner: DirectRunner; family: () => Family; params: GenerationParams }

interface Acc { tokens: number; nfe: number; ms: number; firstMs: number; runs: number }

async function main(): Promise<void> {
  const modelDir = resolve(REPO, String(values.model));
  const baselineDir = join(REPO, '.work', 'bench', 'mdlm-like-e2d2');
  if (!existsSync(join(baselineDir, 'model.json'))) {
    const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_baseline', '--like', modelDir, '--out', baselineDir], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dlm.e2d2_baseline failed: ${r.stderr}`);
  }
  const threads = Number(values.threads);
  const e2d2 = await DirectRunner.open(modelDir, threads);
  const mdlm = await DirectRunner.open(baselineDir, threads);
  const m = e2d2.dir.manifest;
  const bs = m.block!.size;
  const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);
  const lengths = String(values.tokens).split(',').map(Number);
  const rounds = Number(values.rounds);
  const common = { temperature: 1, topP: 1, topK: 0, seed: 1, ignoreEos: true, stopTokenIds: [], streamSteps: false, sampler: 'confidence_topk' };
  const configs: (Config & { n: number; rate: number; kind: string })[] = [];
  for (const n of lengths) {
    // Two rates of decoding: one token per network step (E2D2: steps = block size; MDLM: steps =
    // window) and a whole block per step (E2D2: 1 step per block; MDLM: window / block steps).
    for (const rate of [1, bs]) {
      const e = { ...common, maxTokens: n, steps: bs / rate, blockSize: bs };
      const w = Math.min(n, Math.floor(mdlm.dir.manifest.max_length / 2));
      const add = (kind: string, runner: DirectRunner, family: () => Family, params: GenerationParams) =>
        configs.push({ name: `${kind} n=${n} ${rate} tok/step`, runner, family, params, n, rate, kind });
      add('e2d2', e2d2, () => makeE2d2Family(), e);
      add('e2d2-recompute', e2d2, () => makeE2d2Family({ recompute: true }), e);
      add('mdlm', mdlm, () => mdlmFamily, { ...common, maxTokens: n, steps: Math.max(1, Math.round(w / rate)), blockSize: w });
    }
  }
  const acc = new Map<string, Acc>(configs.map((c) => [c.name, { tokens: 0, nfe: 0, ms: 0, firstMs: 0, runs: 0 }]));
  const once = async (c: Config, a: Acc | null): Promise<void> => {
    const t0 = performance.now();
    let first = -1;
    const fam = c.family();
    const onCommit = (): void => { if (first < 0) first = performance.now() - t0; };
    const [res] = await c.runner.run(fam, [prompt], c.params, { maxBatch: 1, onCommit, cache: c.runner.newCache(fam) });
    if (!a) return;
    a.ms += performance.now() - t0;
    a.firstMs += first;
    a.tokens += res!.tokens.length;
    a.nfe += res!.usage.nfe;
    a.runs++;
  };
  for (const c of configs) await once(c, null); // warm-up
  for (let r = 0; r < rounds; r++) for (const c of configs) await once(c, acc.get(c.name)!);
  console.log(`E2D2 ${m.name} (${m.architecture.encoder_layers} encoder + ${m.architecture.decoder_layers} decoder layers, d_model ${m.architecture.d_model}) vs MDLM of the same size; prompt 16 tokens, batch 1, confidence_topk, ${rounds} rounds, ${threads} thread(s)`);
  console.log('config                          tokens/s   NFE/token   first tokens ms   e2d2 vs this (tokens/s)');
  const tps = (name: string) => { const a = acc.get(name)!; return a.tokens / (a.ms / 1000); };
  for (const c of configs) {
    const a = acc.get(c.name)!;
    const ref = tps(`e2d2 n=${c.n} ${c.rate} tok/step`);
    console.log(`${c.name.padEnd(30)} ${tps(c.name).toFixed(1).padStart(9)} ${(a.nfe / a.tokens).toFixed(3).padStart(11)} ${(a.firstMs / a.runs).toFixed(1).padStart(17)} ${(ref / tps(c.name)).toFixed(2).padStart(14)}x`);
  }
  await e2d2.close();
  await mdlm.close();
}

void main();
