// One row through an MDLM or Duo model's two graphs (denoiser and denoiser_kv,
// models/dlm/export_kv.py) in onnxruntime-node, with no engine around them: what the kv parity
// test and the approximate cache measurement (loadtest/approx-graphs.ts) both drive. A Duo
// model's graphs read sigma: pass it to denoise() and kv().
import ort from 'onnxruntime-node';
import { loadModelDir, type Manifest } from '../engine/manifest.js';
import type { KvLayout } from '../engine/kv-positions.js';

export interface KvPast {
  /** [lanes, length, Dh] each, rotary applied (a call's present_* for the positions it holds). */
  keys: Float32Array;
  values: Float32Array;
  length: number;
}

export interface KvOut extends KvPast {
  /** [queries, V]. */
  logits: Float32Array;
}

function i64(xs: readonly number[]): BigInt64Array {
  return BigInt64Array.from(xs, (x) => BigInt(x));
}

export class KvModel {
  readonly V: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly headDim: number;
  /** Whether the graphs read sigma (Duo). */
  readonly timed: boolean;

  private constructor(readonly manifest: Manifest, private readonly plain: ort.InferenceSession, private readonly cached: ort.InferenceSession) {
    this.V = manifest.vocab_size;
    const a = manifest.architecture;
    this.nLayers = a.n_layers;
    this.nHeads = a.n_kv_heads ?? a.n_heads;
    this.headDim = a.head_dim;
    this.timed = manifest.graphs.denoiser!.inputs.includes('sigma');
  }

  private sigmaFeed(sigma: number | undefined): Record<string, ort.Tensor> {
    if (!this.timed) return {};
    if (sigma === undefined) throw new Error(`${this.manifest.name} reads sigma: pass the noise level`);
    return { sigma: new ort.Tensor('float32', Float32Array.of(sigma), [1]) };
  }

  static async open(dir: string, threads = 0): Promise<KvModel> {
    const md = loadModelDir(dir);
    const kvPath = md.graphPaths.denoiser_kv;
    if (!kvPath) throw new Error(`${dir}: no denoiser_kv graph (cd models && python3 -m dlm.export_kv --model ${dir})`);
    const opts: ort.InferenceSession.SessionOptions = threads > 0 ? { intraOpNumThreads: threads } : {};
    const [plain, cached] = await Promise.all([
      ort.InferenceSession.create(md.graphPaths.denoiser!, opts),
      ort.InferenceSession.create(kvPath, opts),
    ]);
    return new KvModel(md.manifest, plain, cached);
  }

  layout(length: number): KvLayout {
    return { lanes: this.nLayers * this.nHeads, length, headDim: this.headDim };
  }

  /** The plain denoiser over the whole row: [L, V]. */
  async denoise(tokens: readonly number[], sigma?: number): Promise<Float32Array> {
    const L = tokens.length;
    const out = await this.plain.run({
      ...this.sigmaFeed(sigma),
      tokens: new ort.Tensor('int64', i64(tokens), [1, L]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
    });
    return out.logits!.data as Float32Array;
  }

  /** The kv graph: `tokens` at `positions` as queries against `past` (none: an empty cache). */
  async kv(tokens: readonly number[], positions: readonly number[], past?: KvPast, sigma?: number): Promise<KvOut> {
    const L = tokens.length;
    const { lanes, headDim: Dh } = this.layout(L);
    // An empty past is one slot with mask 0, never a zero-sized axis (docs/model-format.md).
    const P = past && past.length > 0 ? past.length : 1;
    const keys = past && past.length > 0 ? past.keys : new Float32Array(lanes * Dh);
    const values = past && past.length > 0 ? past.values : new Float32Array(lanes * Dh);
    const dims = [1, this.nLayers, this.nHeads, P, Dh];
    const out = await this.cached.run({
      ...this.sigmaFeed(sigma),
      tokens: new ort.Tensor('int64', i64(tokens), [1, L]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
      positions: new ort.Tensor('int64', i64(positions), [1, L]),
      past_keys: new ort.Tensor('float32', keys, dims),
      past_values: new ort.Tensor('float32', values, dims),
      past_mask: new ort.Tensor('int64', new BigInt64Array(P).fill(past && past.length > 0 ? 1n : 0n), [1, P]),
    });
    return {
      logits: out.logits!.data as Float32Array,
      keys: out.present_keys!.data as Float32Array,
      values: out.present_values!.data as Float32Array,
      length: L,
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.plain.release(), this.cached.release()]);
  }
}
