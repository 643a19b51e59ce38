// Block diffusion against whole-sequence diffusion, in one run (compare the ratios, not the
// absolute numbers across runs or machines): BD3-LM and E2D2 of the same total depth and width
// (models/zoo/bd3lm-brown, models/zoo/e2d2-brown: d_model 128, 3 layers, 1.83M parameters each),
// a whole-sequence MDLM of the same shapes (random weights: speed depends only on the shapes,
// built by models/dlm/e2d2_baseline.py), and the default MDLM model. Batch 1, confidence_topk,
// 2 tokens decoded per network call everywhere (block 4 with 2 steps per block; MDLM with
// steps = window / 2), EOS ignored; tokens/s, NFE per token and time to the first streamed
// tokens. Each configuration runs once per round in turn, after a warm-up; medians of rounds.
//
//   npm run bench:families -- [--tokens 64,256] [--rounds 3] [--threads N]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineCore } from '../engine/core.js';
import type { GenerationParams } from '../engine/protocol.js';

const { values } = parseArgs({
  options: { tokens: { type: 'string', default: '64,256' }, rounds: { type: 'string', default: '3' }, threads: { type: 'string' } },
});
const REPO = resolve(import.meta.dirname, '..', '..');
const threads = values.threads ? Number(values.threads) : undefined;

interface Config { label: string; dir: string; block: boolean }

function sameShapeMdlm(): string {
  const out = join(REPO, '.work', 'bench', 'mdlm-like-e2d2');
  if (!existsSync(join(out, 'model.json'))) {
    const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_baseline', '--like', join(REPO, 'models/zoo/e2d2-brown'), '--out', out], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dlm.e2d2_baseline failed: ${r.stderr}`);
  }
  return out;
}

const configs: Config[] = [
  { label: 'BD3-LM (KV cache)', dir: join(REPO, 'models/zoo/bd3lm-brown'), block: true },
  { label: 'E2D2 (2 enc + 1 dec)', dir: join(REPO, 'models/zoo/e2d2-brown'), block: true },
  { label: 'MDLM, same shapes', dir: sameShapeMdlm(), block: false },
  { label: 'MDLM default (15.7M)', dir: join(REPO, 'models/zoo/default'), block: false },
];

interface Run { tps: number; nfePerToken: number; firstMs: number }

async function once(core: EngineCore, wait: Map<number, (r: { tokens: number; nfe: number; first: number }) => void>, id: number, cfg: Config, n: number): Promise<Run> {
  const window = Math.min(n, Math.min(128, Math.floor(core.model.maxLength / 2)));
  const params: GenerationParams = {
    ...core.model.defaults, sampler: 'confidence_topk', maxTokens: n, seed: id, ignoreEos: true,
    stopTokenIds: [], streamSteps: false, temperature: 1, topP: 1, topK: 0,
    ...(cfg.block ? { blockSize: 4, steps: 2 } : { steps: Math.ceil(window / 2) }),
  };
  delete (params as Partial<GenerationParams>).remasking;
  const t0 = performance.now();
  const r = await new Promise<{ tokens: number; nfe: number; first: number }>((res) => {
    wait.set(id, res);
    core.generate(id, [1], params);
  });
  const ms = performance.now() - t0;
  return { tps: r.tokens / (ms / 1000), nfePerToken: r.nfe / r.tokens, firstMs: r.first - t0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const lengths = String(values.tokens).split(',').map(Number);
  const rounds = Number(values.rounds);
  const cores: { cfg: Config; core: EngineCore; wait: Map<number, (r: { tokens: number; nfe: number; first: number }) => void> }[] = [];
  for (const cfg of configs) {
    const wait = new Map<number, (r: { tokens: number; nfe: number; first: number }) => void>();
    const state = new Map<number, { tokens: number; first: number }>();
    const core = await EngineCore.open({ modelDir: cfg.dir, device: 'cpu', ...(threads ? { threads } : {}) }, {
      commit(id, tokens) {
        const s = state.get(id) ?? { tokens: 0, first: 0 };
        if (s.tokens === 0) s.first = performance.now();
        s.tokens += tokens.length;
        state.set(id, s);
      },
      step() {},
      error(msg) { throw new Error(`${cfg.label}: ${msg.message}`); },
      done(msg) {
        const s = state.get(msg.id) ?? { tokens: 0, first: 0 };
        state.delete(msg.id);
        wait.get(msg.id)?.({ tokens: s.tokens, nfe: msg.usage.nfe, first: s.first });
      },
    });
    cores.push({ cfg, core, wait });
  }
  let id = 1;
  for (const c of cores) await once(c.core, c.wait, id++, c.cfg, 16); // warm-up
  const results = new Map<string, Run[]>();
  for (let r = 0; r < rounds; r++) {
    for (const n of lengths) {
      for (const c of cores) {
        const key = `${n}\u0000${c.cfg.label}`;
        const list = results.get(key) ?? [];
        list.push(await once(c.core, c.wait, id++, c.cfg, n));
        results.set(key, list);
      }
    }
  }
  console.log(`batch 1, confidence_topk, 2 tokens per call, ${rounds} rounds (medians)${threads ? `, ${threads} ORT threads` : ''}`);
  console.log('tokens  model                    tokens/s  NFE/token  first tokens (ms)  tokens/s vs BD3-LM');
  for (const n of lengths) {
    const base = median(results.get(`${n}\u0000${configs[0]!.label}`)!.map((x) => x.tps));
    for (const cfg of configs) {
      const xs = results.get(`${n}\u0000${cfg.label}`)!;
      const tps = median(xs.map((x) => x.tps));
      console.log(`${String(n).padStart(6)}  ${cfg.label.padEnd(24)} ${tps.toFixed(1).padStart(8)} ${median(xs.map((x) => x.nfePerToken)).toFixed(2).padStart(10)} ${median(xs.map((x) => x.firstMs)).toFixed(0).padStart(18)} ${(tps / base).toFixed(2).padStart(19)}x`);
    }
  }
  for (const c of cores) await c.core.close();
}

void main();
