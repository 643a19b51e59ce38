// Runs E2D2 parity cases written by models/dlm/e2d2_parity.py (our E2D2, or a converted Qwen3
// one through dlm.convert_e2d2 --parity-out) through onnxruntime-node: each graph case against
// PyTorch's outputs, and the chain - the encoder once per block appending its own outputs to the
// engine's cache view, the decoder per block against it - against PyTorch's full forward.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BlockTable, positionSlice } from '../../engine/block-table.js';
import { DECODER_CONTEXT, ENCODER_PAST, e2d2Layout } from '../../engine/families/e2d2-cache.js';

type Spec = Record<string, { type: 'int64' | 'float32'; dims: number[] }>;
interface Index {
  graphs: { encoder: string; decoder: string };
  cases: { name: string; role: 'encoder' | 'decoder'; inputs: Spec; outputs: Spec }[];
  chain: { block_size: number; length: number; enc_layers: number; dec_layers: number; kv_heads: number; head_dim: number; vocab: number; files: Spec };
}

function read(path: string, type: 'int64' | 'float32'): BigInt64Array | Float32Array {
  const b = readFileSync(path);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return type === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
}

function index(dir: string): Index {
  return JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Index;
}

/** Flat index -> (row, position) for [B, L, ...] (hidden, logits) or [B, nL, H, L, Dh] (caches). */
function rowPos(i: number, dims: number[], perPosition: boolean): [number, number] {
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const b = Math.floor(i / per);
  const L = perPosition ? dims[1]! : dims[3]!;
  const inner = perPosition ? dims[2]! : dims[4]!;
  return [b, Math.floor(i / inner) % L];
}

/** Every graph case within tol of PyTorch over real (unpadded) positions. */
export async function checkE2d2Cases(dir: string, tol: number): Promise<void> {
  const ix = index(dir);
  const sessions = { encoder: await ort.InferenceSession.create(ix.graphs.encoder), decoder: await ort.InferenceSession.create(ix.graphs.decoder) };
  for (const c of ix.cases) {
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
      assert.ok(worst <= tol, `${c.name}.${name}: max |ORT - torch| = ${worst}`);
      assert.ok(want.some((x) => Math.abs(x) > 1e-3), `${c.name}.${name} carries signal`);
    }
  }
  await sessions.encoder.release();
  await sessions.decoder.release();
}

/** The chain through the graphs block by block; returns the worst difference from PyTorch's full forward. */
export async function e2d2ChainWorst(dir: string): Promise<number> {
  const ix = index(dir);
  const ch = ix.chain;
  const enc = await ort.InferenceSession.create(ix.graphs.encoder);
  const dec = await ort.InferenceSession.create(ix.graphs.decoder);
  const x0 = read(join(dir, 'chain.x0.bin'), 'int64') as BigInt64Array;
  const xt = read(join(dir, 'chain.xt.bin'), 'int64') as BigInt64Array;
  const want = read(join(dir, 'chain.logits.bin'), 'float32') as Float32Array;
  // The engine's own block table (no shared cache), as a sequence lays out its past.
  const cache = new BlockTable(e2d2Layout({ encLayers: ch.enc_layers, decLayers: ch.dec_layers, kvHeads: ch.kv_heads, headDim: ch.head_dim }), Infinity, null);
  const bs = ch.block_size;
  const V = ch.vocab;
  const ones = new ort.Tensor('int64', new BigInt64Array(bs).fill(1n), [1, bs]);
  let worst = 0;
  for (let s = 0; s < ch.length; s += bs) {
    const pos = new ort.Tensor('int64', BigInt64Array.from({ length: bs }, (_, i) => BigInt(s + i)), [1, bs]);
    const ctx = cache.past(DECODER_CONTEXT);
    const t = (r: { type: 'int64' | 'float32'; data: Float32Array | BigInt64Array; dims: number[] }) => new ort.Tensor(r.type, r.data, [1, ...r.dims]);
    const { logits } = await dec.run({
      tokens: new ort.Tensor('int64', xt.slice(s, s + bs), [1, bs]), attention_mask: ones, positions: pos,
      context_keys: t(ctx.keys), context_values: t(ctx.values), context_mask: t(ctx.mask),
    });
    const got = logits!.data as Float32Array;
    for (let i = 0; i < bs * V; i++) worst = Math.max(worst, Math.abs(got[i]! - want[s * V + i]!));
    const past = cache.past(ENCODER_PAST);
    const o = await enc.run({
      tokens: new ort.Tensor('int64', x0.slice(s, s + bs), [1, bs]), attention_mask: ones, positions: pos,
      block_size: new ort.Tensor('int64', BigInt64Array.of(BigInt(bs)), [1]),
      past_keys: t(past.keys), past_values: t(past.values), past_mask: t(past.mask),
    });
    const part = (n: string) => positionSlice({ type: 'float32', data: o[n]!.data as Float32Array, dims: o[n]!.dims.slice(1) }, 0, bs);
    cache.store('', bs, { encKeys: part('present_keys'), encValues: part('present_values'), ctxKeys: part('present_context_keys'), ctxValues: part('present_context_values') });
  }
  assert.equal(cache.length, ch.length);
  await enc.release();
  await dec.release();
  return worst;
}
