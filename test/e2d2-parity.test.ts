// The exported E2D2 graphs through onnxruntime-node match PyTorch: the encoder (past padded
// through past_mask, a short row padded through attention_mask, two blocks in one call) and the
// decoder (context padded through context_mask), with fp32 and fp16 weight storage. And the
// engine's path - the encoder once per block appending its own outputs to the caches, the
// decoder per block against them - reproduces PyTorch's full forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { E2d2Cache, positionSlice } from '../engine/families/e2d2-cache.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;

type Spec = Record<string, { type: 'int64' | 'float32'; dims: number[] }>;
interface Index {
  graphs: { encoder: string; decoder: string };
  cases: { name: string; role: 'encoder' | 'decoder'; inputs: Spec; outputs: Spec }[];
  chain: { block_size: number; length: number; enc_layers: number; dec_layers: number; n_heads: number; head_dim: number; vocab: number; files: Spec };
}

function read(path: string, type: 'int64' | 'float32'): BigInt64Array | Float32Array {
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return type === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
}

// One Python process writes both variants (loading torch dominates the time).
let made: string | null = null;
function makeCases(fp16: boolean): string {
  if (!made) {
    made = mkdtempSync(join(tmpdir(), 'dlm-e2d2-parity-'));
    const r = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_parity', '--out', made, '--both'], { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, `dlm.e2d2_parity failed: ${r.stderr}`);
  }
  return join(made, fp16 ? 'fp16' : 'fp32');
}

/** Flat index -> (row, position) for [B, L, ...] (hidden, logits) or [B, nL, H, L, Dh] (caches). */
function rowPos(i: number, dims: number[], perPosition: boolean): [number, number] {
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const b = Math.floor(i / per);
  const L = perPosition ? dims[1]! : dims[3]!;
  const inner = perPosition ? dims[2]! : dims[4]!;
  return [b, Math.floor(i / inner) % L];
}

for (const fp16 of [false, true]) {
  test(`E2D2 encoder and decoder graphs match PyTorch within ${TOL} (${fp16 ? 'fp16 weights' : 'fp32'})`, async () => {
    const dir = makeCases(fp16);
    const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Index;
    const sessions = { encoder: await ort.InferenceSession.create(index.graphs.encoder), decoder: await ort.InferenceSession.create(index.graphs.decoder) };
    for (const c of index.cases) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, spec] of Object.entries(c.inputs)) feeds[name] = new ort.Tensor(spec.type, read(join(dir, `${c.name}.${name}.bin`), spec.type), spec.dims);
      const out = await sessions[c.role].run(feeds);
      const am = feeds.attention_mask!.data as BigInt64Array;
      const L = c.inputs.tokens!.dims[1]!;
      for (const [name, spec] of Object.entries(c.outputs)) {
        assert.deepEqual(out[name]!.dims, spec.dims, `${c.name}.${name} dims`);
        const got = out[name]!.data as Float32Array;
        const want = read(join(dir, `${c.name}.${name}.bin`), 'float32') as Float32Array;
        let worst = 0;
        for (let i = 0; i < want.length; i++) {
          const [b, pos] = rowPos(i, spec.dims, spec.dims.length === 3);
          if (am[b * L + pos] === 0n) continue; // padded positions are never read
          worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        }
        assert.ok(worst <= TOL, `${c.name}.${name}: max |ORT - torch| = ${worst}`);
        assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}.${name} carries signal`);
      }
    }
    await sessions.encoder.release();
    await sessions.decoder.release();
  });
}

test('E2D2 through the graphs block by block (cached encoder state) equals the full PyTorch forward', async () => {
  const dir = makeCases(false);
  const index = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Index;
  const ch = index.chain;
  const enc = await ort.InferenceSession.create(index.graphs.encoder);
  const dec = await ort.InferenceSession.create(index.graphs.decoder);
  const x0 = read(join(dir, 'chain.x0.bin'), 'int64') as BigInt64Array;
  const xt = read(join(dir, 'chain.xt.bin'), 'int64') as BigInt64Array;
  const want = read(join(dir, 'chain.logits.bin'), 'float32') as Float32Array;
  const cache = new E2d2Cache({ encLayers: ch.enc_layers, decLayers: ch.dec_layers, nHeads: ch.n_heads, headDim: ch.head_dim });
  const bs = ch.block_size;
  const V = ch.vocab;
  const ones = new ort.Tensor('int64', new BigInt64Array(bs).fill(1n), [1, bs]);
  let worst = 0;
  for (let s = 0; s < ch.length; s += bs) {
    const pos = new ort.Tensor('int64', BigInt64Array.from({ length: bs }, (_, i) => BigInt(s + i)), [1, bs]);
    const ctx = cache.contextTensors();
    const t = (r: { type: 'int64' | 'float32'; data: Float32Array | BigInt64Array; dims: number[] }) => new ort.Tensor(r.type, r.data, [1, ...r.dims]);
    const { logits } = await dec.run({
      tokens: new ort.Tensor('int64', xt.slice(s, s + bs), [1, bs]), attention_mask: ones, positions: pos,
      context_keys: t(ctx.keys), context_values: t(ctx.values), context_mask: t(ctx.mask),
    });
    const got = logits!.data as Float32Array;
    for (let i = 0; i < bs * V; i++) worst = Math.max(worst, Math.abs(got[i]! - want[s * V + i]!));
    const past = cache.pastTensors();
    const o = await enc.run({
      tokens: new ort.Tensor('int64', x0.slice(s, s + bs), [1, bs]), attention_mask: ones, positions: pos,
      block_size: new ort.Tensor('int64', BigInt64Array.of(BigInt(bs)), [1]),
      past_keys: t(past.keys), past_values: t(past.values), past_mask: t(past.mask),
    });
    const part = (n: string) => positionSlice({ type: 'float32', data: o[n]!.data as Float32Array, dims: o[n]!.dims.slice(1) }, 0, bs);
    cache.append({ length: bs, encKeys: part('present_keys'), encValues: part('present_values'), ctxKeys: part('present_context_keys'), ctxValues: part('present_context_values') });
  }
  assert.equal(cache.length, ch.length);
  assert.ok(worst <= TOL, `block-by-block logits differ from the full forward by ${worst}`);
  await enc.release();
  await dec.release();
});
