// Serving a model's int8 variant: --precision / DLM_PRECISION pick the graph files, /health,
// /v1/models and /metrics say which run, and a model or device that cannot serve the asked
// precision is refused at start with a message naming what is missing (through the real CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { foldedGraph } from '../engine/derived-graph.js';
import { loadModelDir, ManifestError } from '../engine/manifest.js';
import { pickPrecision, PrecisionError } from '../engine/precision.js';
import { freePort, SpawnedServer, ROOT } from './helpers/spawned-server.js';

const MAIN = fileURLToPath(new URL('../server/main.js', import.meta.url));
const TINY = join(ROOT, 'models', 'zoo', 'tiny-mdlm');
const DEFAULT = join(ROOT, 'models', 'zoo', 'default');

/** A copy of tiny-mdlm whose model.json is changed by `edit`. */
function tinyCopy(edit: (m: Record<string, unknown> & { graphs: { denoiser: Record<string, unknown> } }) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-int8-'));
  for (const f of ['denoiser.onnx', 'denoiser.int8.onnx', 'denoiser_kv.onnx', 'tokenizer.json']) copyFileSync(join(TINY, f), join(dir, f));
  const m = JSON.parse(readFileSync(join(TINY, 'model.json'), 'utf8'));
  edit(m);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(m));
  return dir;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [MAIN, '--port', '0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, err };
}

test('precision: auto takes the manifest default per device, fp32 where it names none', () => {
  const def = loadModelDir(DEFAULT);
  assert.equal(pickPrecision(def, 'auto', 'cpu').precision, def.manifest.default_precision.cpu ?? 'fp32');
  assert.match(pickPrecision(def, 'int8', 'cpu').graphPaths.denoiser!, /denoiser\.int8\.onnx$/);
  assert.equal(pickPrecision(def, 'auto', 'cuda').precision, 'fp32'); // no GPU default: CPU-only int8 kernels
  assert.match(pickPrecision(def, 'fp32', 'cpu').graphPaths.denoiser!, /denoiser\.onnx$/);
  assert.equal(pickPrecision(loadModelDir(TINY), 'auto', 'cpu').precision, 'fp32');
  assert.throws(() => pickPrecision(def, 'int8', 'webgpu'), PrecisionError);
});

test('precision: a derived variant beside another source graph is refused', () => {
  const dir = tinyCopy((m) => {
    const v = (m.graphs.denoiser.variants as { int8: Record<string, unknown> }).int8;
    v.source_sha256 = '0'.repeat(64);
  });
  assert.throws(() => pickPrecision(loadModelDir(dir), 'int8', 'cpu'), (e: unknown) => e instanceof ManifestError && /derived from another denoiser\.onnx/.test(e.message));
  const badPrecision = tinyCopy((m) => { m.graphs.denoiser.variants = { int4: { file: 'denoiser.int8.onnx' } }; });
  assert.throws(() => loadModelDir(badPrecision), ManifestError); // only known precisions may be listed
});

test('CLI: a model without the asked variant, or int8 on a GPU, is refused at start naming why', async () => {
  const plain = tinyCopy((m) => { delete m.graphs.denoiser.variants; });
  const none = await cli(['--model', plain, '--precision', 'int8']);
  assert.equal(none.code, 1);
  assert.match(none.err, /--precision int8: model tiny-mdlm has no int8 variant of its 'denoiser' graph/);
  const env = await cli(['--model', plain], { DLM_PRECISION: 'int8' });
  assert.equal(env.code, 1);
  assert.match(env.err, /has no int8 variant/);
  const gpu = await cli(['--model', TINY, '--precision', 'int8', '--device', 'cuda']);
  assert.equal(gpu.code, 1);
  assert.match(gpu.err, /only the CPU provider implements; on --device cuda serve --precision fp32/);
  const bad = await cli(['--precision', 'int4']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--precision: expected fp32, int8, auto, got 'int4'/);
});

for (const precision of ['int8', 'fp32'] as const) {
  test(`server: --precision ${precision} is what /health, /v1/models and /metrics report, and it generates`, async () => {
    const server = new SpawnedServer(await freePort(), ['--precision', precision]);
    await server.start();
    try {
      const health = (await (await fetch(`${server.base}/health`)).json()) as { precision: string; device: string };
      assert.equal(health.precision, precision);
      assert.equal(health.device, 'cpu');
      const models = (await (await fetch(`${server.base}/v1/models`)).json()) as { data: { precision: string }[] };
      assert.equal(models.data[0]!.precision, precision);
      const metrics = await (await fetch(`${server.base}/metrics`)).text();
      assert.match(metrics, new RegExp(`dlm_model_info\\{model_name="tiny-mdlm",device="cpu",precision="${precision}"\\} 1`));
      const r = await fetch(`${server.base}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'The jury', max_tokens: 8, steps: 4, seed: 1 }) });
      assert.equal(r.status, 200);
      const body = (await r.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
      assert.equal(body.usage.completion_tokens, 8);
    } finally {
      await server.stop();
    }
  });
}

test('a derived variant is folded once into a cache file that computes exactly what it does', async () => {
  const def = loadModelDir(DEFAULT);
  const pick = pickPrecision(def, 'int8', 'cpu');
  const sha = pick.derivedFrom.denoiser!;
  assert.match(sha, /^[0-9a-f]{64}$/);
  const cache = mkdtempSync(join(tmpdir(), 'dlm-fold-'));
  const folded = await foldedGraph(pick.graphPaths.denoiser!, sha, cache);
  assert.ok(folded.startsWith(cache), `not folded into the cache: ${folded}`);
  const mtime = statSync(folded).mtimeMs;
  assert.equal(await foldedGraph(pick.graphPaths.denoiser!, sha, cache), folded);
  assert.equal(statSync(folded).mtimeMs, mtime, 'the cache file was written again');
  const L = 12;
  const feeds = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: L }, (_, i) => BigInt(i % 3 === 0 ? 3 : 40 + 17 * i)), [1, L]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
  };
  const run = async (path: string): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(path);
    try { return (await s.run(feeds)).logits!.data as Float32Array; } finally { await s.release(); }
  };
  assert.deepEqual(await run(folded), await run(pick.graphPaths.denoiser!));
});
