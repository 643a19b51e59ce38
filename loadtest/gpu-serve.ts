// Serves each model through the real server on one device and checks it with the official openai
// client (a completion, the same completion streamed, a seed that reproduces its text), then
// sweeps the batch size through the real scheduler: B concurrent completions at a time, the
// tokens/s they got, and the FLOP/s the engine's network calls achieved against the device's
// peak. scripts/gpu-run.sh runs it per device (cpu, cuda, webgpu) on the same models.
//
//   node dist/loadtest/gpu-serve.js --device cuda --model models/zoo/tiny-mdlm [--model DIR]...
//     [--batches 1,8,32,64] [--max-tokens 32] [--steps 8] [--rounds 1] [--peak-tf32 T --peak-fp16 T]
//     --json-out FILE
//
// FLOPs are 2 x parameters x positions through the network (the device probe's count): a row of
// a full-sequence family (MDLM, Duo, LDDM, AS-ARM) covers prompt + max_tokens positions, a row of
// a block family (BD3-LM, E2D2) one block. Attention over the context is left out, so the share
// is a floor. Exit 0 when every check passed; 3 when one failed (the JSON says which).
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import type { Device } from '../engine/api.js';
import { loadModelDir, type Manifest } from '../engine/manifest.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { startTarget } from './target.js';

const PROMPT = 'The old library on the hill';

export interface Check {
  ok: boolean;
  error?: string;
  text?: string;
  tokens?: number;
}
export interface SweepPoint {
  batch: number;
  requests: number;
  seconds: number;
  completionTokens: number;
  tokensPerSec: number;
  /** Network calls the engine made and their mean batch (rows per call). */
  calls: number;
  meanBatch: number;
  tflops: number;
  /** tflops / the device's fp32 (TF32) peak, when given. */
  peakShare?: number;
  p50Ms: number;
}
export interface ServedModel {
  model: string;
  /** The served family; LDDM (MDLM with the latent pathway) is named apart. */
  family: string;
  nParams: number;
  device: Device;
  ok: boolean;
  error?: string;
  checks: { completion: Check; stream: Check & { chunks?: number }; seed: Check & { same?: boolean } };
  sweep: SweepPoint[];
}
export interface ServeReport {
  device: Device;
  maxTokens: number;
  steps: number;
  models: ServedModel[];
}

export function familyOf(m: Manifest): string {
  // Loopholing rides on a base family: LDDM-M on mdlm, LDDM-U on duo.
  if (m.loopholing) return m.family === 'duo' ? 'lddm-u' : 'lddm';
  return m.family;
}

/** Positions one network row covers: the whole sequence, or one block for the block families. */
function rowPositions(m: Manifest, sequence: number): number {
  const block = m.defaults?.block_size ?? m.block?.size;
  if ((m.family === 'bd3lm' || m.family === 'e2d2') && block !== undefined) return block;
  return sequence;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1]! : 0;
}

async function check(run: () => Promise<Check>): Promise<Check> {
  try {
    return await run();
  } catch (err) {
    return { ok: false, error: (err as Error).message.split('\n')[0] };
  }
}

async function serveOne(modelDir: string, device: Device, o: { batches: number[]; maxTokens: number; steps: number; rounds: number; peakTf32?: number }): Promise<ServedModel> {
  const dir = loadModelDir(modelDir);
  const m = dir.manifest;
  const result: ServedModel = {
    model: modelDir, family: familyOf(m), nParams: m.architecture.n_params ?? 0, device, ok: false,
    checks: { completion: { ok: false }, stream: { ok: false }, seed: { ok: false } }, sweep: [],
  };
  let target;
  try {
    target = await startTarget({ modelDir: dir.dir, maxBatch: Math.max(...o.batches), maxQueue: 1024, device });
  } catch (err) {
    result.error = `the server did not start on ${device}: ${(err as Error).message.split('\n')[0]}`;
    return result;
  }
  const client = new OpenAI({ baseURL: `${target.base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
  // The diffusion settings ride top-level in the body, as the server documents; the client passes them through.
  const body = (seed: number): OpenAI.CompletionCreateParamsNonStreaming =>
    ({ model: target.model, prompt: PROMPT, max_tokens: o.maxTokens, seed, steps: o.steps, ignore_eos: true }) as OpenAI.CompletionCreateParamsNonStreaming;
  try {
    const c = result.checks;
    c.completion = await check(async () => {
      const r = await client.completions.create(body(7));
      const tokens = r.usage?.completion_tokens ?? 0;
      return { ok: typeof r.choices[0]?.text === 'string' && tokens > 0, text: r.choices[0]?.text, tokens };
    });
    c.stream = await check(async () => {
      const stream = await client.completions.create({ ...body(7), stream: true });
      let text = '';
      let chunks = 0;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        chunks++;
        text += chunk.choices[0]?.text ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      // The same seed and settings: the stream must spell out the completion's text.
      const same = c.completion.text === undefined || text === c.completion.text;
      return { ok: chunks > 0 && !!finish && same, text, chunks, ...(same ? {} : { error: 'the streamed text differs from the completion with the same seed' }) };
    });
    c.seed = await check(async () => {
      const [a, b] = [await client.completions.create(body(11)), await client.completions.create(body(11))];
      const same = a.choices[0]?.text === b.choices[0]?.text;
      return { ok: same, same, text: a.choices[0]?.text };
    });

    const tok = await TextTokenizer.fromFile(dir.tokenizerPath);
    const sequence = (await tok.encode(PROMPT)).length + o.maxTokens;
    const flopsPerRow = 2 * result.nParams * rowPositions(m, sequence);
    for (const batch of o.batches) {
      const requests = batch * o.rounds;
      // The engine pushes each tick's calls; collect those of this sweep point only.
      const batchSizes: number[] = [];
      const unfollow = target.engine!.onStats((st) => batchSizes.push(...st.batchSizes));
      const latencies: number[] = [];
      let completionTokens = 0;
      let next = 0;
      const t0 = performance.now();
      // `batch` clients in a closed loop until `requests` completions are done.
      await Promise.all(Array.from({ length: batch }, async () => {
        while (next < requests) {
          const seed = 1000 + next++;
          const s = performance.now();
          const r = await client.completions.create(body(seed));
          latencies.push(performance.now() - s);
          completionTokens += r.usage?.completion_tokens ?? 0;
        }
      }));
      const seconds = (performance.now() - t0) / 1e3;
      unfollow();
      const rows = batchSizes.reduce((a, b) => a + b, 0);
      const tflops = (rows * flopsPerRow) / seconds / 1e12;
      result.sweep.push({
        batch, requests, seconds, completionTokens, tokensPerSec: completionTokens / seconds,
        calls: batchSizes.length, meanBatch: rows / Math.max(1, batchSizes.length), tflops,
        ...(o.peakTf32 ? { peakShare: tflops / o.peakTf32 } : {}), p50Ms: median(latencies),
      });
    }
    result.ok = c.completion.ok && c.stream.ok && c.seed.ok;
    if (!result.ok) result.error = Object.entries(c).filter(([, v]) => !v.ok).map(([k, v]) => `${k}: ${v.error ?? 'failed'}`).join('; ');
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
  } finally {
    await target.close();
  }
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: 'cpu' },
      model: { type: 'string', multiple: true },
      batches: { type: 'string', default: '1,8,32,64' },
      'max-tokens': { type: 'string', default: '32' },
      steps: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '1' },
      'peak-tf32': { type: 'string' },
      'peak-fp16': { type: 'string' },
      'json-out': { type: 'string' },
    },
    strict: true,
  });
  const device = values.device as Device;
  if (!['cpu', 'cuda', 'webgpu'].includes(device)) throw new Error(`--device: '${values.device}' is not cpu, cuda or webgpu`);
  if (!values.model?.length) throw new Error('--model DIR is required (once per model)');
  const batches = values.batches!.split(',').map(Number);
  const [maxTokens, steps, rounds] = [Number(values['max-tokens']), Number(values.steps), Number(values.rounds)];
  for (const [flag, v] of [['--batches', batches], ['--max-tokens', [maxTokens]], ['--steps', [steps]], ['--rounds', [rounds]]] as const) {
    if (v.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag}: not a list of positive integers`);
  }
  const report: ServeReport = { device, maxTokens, steps, models: [] };
  for (const model of values.model) {
    const r = await serveOne(resolve(model), device, { batches, maxTokens, steps, rounds, peakTf32: values['peak-tf32'] ? Number(values['peak-tf32']) : undefined });
    report.models.push({ ...r, model });
    // After each model: a run cut short by its timeout still leaves what it measured.
    if (values['json-out']) writeFileSync(values['json-out'], JSON.stringify(report) + '\n');
    const best = r.sweep.reduce((a, p) => Math.max(a, p.tokensPerSec), 0);
    console.log(`${device} ${r.family} (${model}): ${r.ok ? 'ok' : `FAILED: ${r.error}`}; best ${best.toFixed(0)} tokens/s`
      + r.sweep.map((p) => `\n  batch ${String(p.batch).padStart(3)}: ${p.tokensPerSec.toFixed(1)} tokens/s, mean batch ${p.meanBatch.toFixed(1)}, ${p.tflops.toFixed(4)} TFLOP/s`
        + (p.peakShare === undefined ? '' : ` (${(100 * p.peakShare).toFixed(2)}% of peak)`)).join(''));
  }
  process.exit(report.models.every((r) => r.ok) ? 0 : 3);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(`gpu-serve: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
