// The exported Duo, LDDM-M and LDDM-U graphs through onnxruntime-node match PyTorch on the same
// inputs (dlm.parity_uniform writes them): sigma and latent_in are read, latent_out comes back,
// and a padded row equals that row run alone; with fp32 weights and with the fp16 weight storage
// the shipped models use. DLM_UNIFORM_PARITY adds dlm.parity_uniform arguments, e.g.
// `--duo-run .work/runs/duo --lddm-run .work/runs/lddm --lddmu-run .work/runs/lddm-u` to check
// trained runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TOL = 1e-4;

interface Case {
  name: string;
  shapes: Record<string, number[]>;
}
interface Entry {
  graph: string;
  inputs: string[];
  outputs: string[];
  cases: Case[];
}

function read(path: string, int: boolean): BigInt64Array | Float32Array {
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return int ? new BigInt64Array(buf) : new Float32Array(buf);
}

const extra = (process.env.DLM_UNIFORM_PARITY ?? '').split(/\s+/).filter((a) => a !== '').map((a) => (a.startsWith('-') ? a : resolve(a)));
const dirs: string[] = [];
type UniformFamily = 'duo' | 'lddm' | 'lddm-u';
interface Cases {
  dir: string;
  index: Record<UniformFamily, Entry>;
}
// One dlm.parity_uniform run writes every family's graph and cases: made once per weight storage.
const made = new Map<boolean, Cases>();

function makeCases(fp16: boolean): Cases {
  const have = made.get(fp16);
  if (have) return have;
  const dir = mkdtempSync(join(tmpdir(), 'dlm-uniform-parity-'));
  dirs.push(dir);
  const run = spawnSync('/usr/bin/python3', ['-m', 'dlm.parity_uniform', '--out', dir, ...(fp16 ? ['--fp16-weights'] : []), ...extra], { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(run.status, 0, `dlm.parity_uniform failed: ${run.stderr}`);
  const cases = { dir, index: JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Record<UniformFamily, Entry> };
  made.set(fp16, cases);
  return cases;
}

async function check(family: UniformFamily, fp16: boolean): Promise<{ all: Record<string, Float32Array>[]; widths: Record<string, number> }> {
  const { dir, index } = makeCases(fp16);
  const e = index[family];
  const widths: Record<string, number> = {};
  const s = await ort.InferenceSession.create(e.graph, { intraOpNumThreads: 1 });
  assert.deepEqual(s.inputNames, e.inputs);
  assert.deepEqual(s.outputNames, e.outputs);
  const all: Record<string, Float32Array>[] = [];
  for (const c of e.cases) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of e.inputs) {
      const int = n === 'tokens' || n === 'attention_mask';
      feeds[n] = new ort.Tensor(int ? 'int64' : 'float32', read(join(dir, `${c.name}.${n}.bin`), int), c.shapes[n]!);
    }
    const got = await s.run(feeds);
    const mask = feeds.attention_mask!.data as BigInt64Array;
    const outs: Record<string, Float32Array> = {};
    for (const n of e.outputs) {
      const want = read(join(dir, `${c.name}.${n}.bin`), false) as Float32Array;
      const data = got[n]!.data as Float32Array;
      assert.deepEqual(got[n]!.dims, c.shapes[n]);
      const width = c.shapes[n]![2]!;
      widths[n] = width;
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        if (mask[Math.floor(i / width)] === 0n) continue; // padded query rows are never read
        worst = Math.max(worst, Math.abs(data[i]! - want[i]!));
      }
      assert.ok(worst <= TOL, `${c.name}.${n}: max |ORT - torch| = ${worst}`);
      assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}.${n} carries signal`);
      outs[n] = data;
    }
    all.push(outs);
  }
  await s.release();
  return { all, widths };
}

function paddedRowMatches(all: Record<string, Float32Array>[], name: string, width: number): void {
  const padded = all[3]![name]!;
  const alone = all[4]![name]!;
  for (let i = 0; i < 4 * width; i++) {
    assert.ok(Math.abs(padded[9 * width + i]! - alone[i]!) <= TOL, `${name}: padding leaks into row 1 at ${i}`);
  }
}

for (const fp16 of [false, true]) {
  const how = fp16 ? 'fp16 weights' : 'fp32';
  test(`Duo graph (tokens, attention_mask, sigma -> logits) matches PyTorch within ${TOL} (${how})`, async () => {
    const { all, widths } = await check('duo', fp16);
    paddedRowMatches(all, 'logits', widths.logits!);
  });

  test(`LDDM-M graph (latent_in -> logits, latent_out) matches PyTorch within ${TOL} (${how})`, async () => {
    const { all, widths } = await check('lddm', fp16);
    paddedRowMatches(all, 'logits', widths.logits!);
    paddedRowMatches(all, 'latent_out', widths.latent_out!);
  });

  test(`LDDM-U graph (sigma, latent_in -> logits, latent_out) matches PyTorch within ${TOL} (${how})`, async () => {
    const { all, widths } = await check('lddm-u', fp16);
    assert.deepEqual(made.get(fp16)!.index['lddm-u'].inputs, ['tokens', 'attention_mask', 'sigma', 'latent_in']);
    paddedRowMatches(all, 'logits', widths.logits!);
    paddedRowMatches(all, 'latent_out', widths.latent_out!);
  });
}

test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
