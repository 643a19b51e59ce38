// One sequence's view of E2D2 encoder state: per committed block in its window, the encoder's
// own keys/values (what later encoder calls attend to) and the decoder layers' keys/values of
// the encoder's output (what every denoising step attends to). Blocks are stored as they came
// back from the encoder graph and concatenated into the graphs' [nL, H, P, head_dim] layout only
// when a new block changed them, so the many decoder steps of one block reuse one tensor.
//
// The blocks themselves live in the model's shared pool (prefix reuse across requests); this view
// holds one reference per block and gives it back when the block leaves the window or the
// sequence ends. Without a pool (the recompute baseline) the blocks are its own.
import type { BlockPool, PoolBlock } from '../block-cache.js';
import type { RowTensor } from '../row-tensor.js';

export interface E2d2Shape {
  encLayers: number;
  decLayers: number;
  kvHeads: number;
  headDim: number;
}

/** One committed block's tensors: [nL, H, length, headDim] each. */
export interface EncoderTensors {
  readonly encKeys: Float32Array;
  readonly encValues: Float32Array;
  readonly ctxKeys: Float32Array;
  readonly ctxValues: Float32Array;
}

/** A block as the view reads it: a pool handle, or (no pool) a block of its own. */
export type EncodedBlock = EncoderTensors & { readonly length: number };

export type EncoderPool = BlockPool<EncoderTensors>;

export function encoderBytes(t: EncoderTensors): number {
  return t.encKeys.byteLength + t.encValues.byteLength + t.ctxKeys.byteLength + t.ctxValues.byteLength;
}

export interface PastTensors {
  keys: RowTensor;
  values: RowTensor;
  mask: RowTensor;
}

export class E2d2Cache {
  private readonly blocks: EncodedBlock[] = [];
  private past: PastTensors | null = null;
  private context: PastTensors | null = null;

  constructor(readonly shape: E2d2Shape, private readonly pool: EncoderPool | null = null) {}

  /** Tokens whose state is held. */
  get length(): number {
    return this.blocks.reduce((n, b) => n + b.length, 0);
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  get bytes(): number {
    return this.blocks.reduce((n, b) => n + encoderBytes(b), 0);
  }

  /** With a pool: takes over one reference to a handle from its acquire or put. */
  append(block: EncodedBlock): void {
    this.blocks.push(block);
    this.past = this.context = null;
  }

  /** Drop the oldest block (it left the attention window). */
  dropOldest(): void {
    const b = this.blocks.shift();
    // With a pool every block came from it (append's contract).
    if (b) this.pool?.release(b as PoolBlock<EncoderTensors>);
    this.past = this.context = null;
  }

  clear(): void {
    while (this.blocks.length > 0) this.dropOldest();
    this.past = this.context = null;
  }

  /** The encoder graph's past_keys / past_values / past_mask for this row. */
  pastTensors(): PastTensors {
    this.past ??= this.concat('encKeys', 'encValues', this.shape.encLayers);
    return this.past;
  }

  /** The decoder graph's context_keys / context_values / context_mask for this row. */
  contextTensors(): PastTensors {
    this.context ??= this.concat('ctxKeys', 'ctxValues', this.shape.decLayers);
    return this.context;
  }

  // At least one slot: an empty cache is one masked dummy slot, not a zero-sized axis.
  private concat(k: keyof EncoderTensors, v: keyof EncoderTensors, nL: number): PastTensors {
    const { kvHeads: H, headDim: Dh } = this.shape;
    const real = this.length;
    const P = Math.max(1, real);
    const keys = new Float32Array(nL * H * P * Dh);
    const values = new Float32Array(keys.length);
    let at = 0;
    for (const b of this.blocks) {
      const n = b.length * Dh;
      for (let lh = 0; lh < nL * H; lh++) {
        keys.set(b[k].subarray(lh * n, (lh + 1) * n), lh * P * Dh + at * Dh);
        values.set(b[v].subarray(lh * n, (lh + 1) * n), lh * P * Dh + at * Dh);
      }
      at += b.length;
    }
    const mask = new BigInt64Array(P);
    mask.fill(1n, 0, real);
    const dims = [nL, H, P, Dh];
    return {
      keys: { type: 'float32', data: keys, dims },
      values: { type: 'float32', data: values, dims: [...dims] },
      mask: { type: 'int64', data: mask, dims: [P] },
    };
  }
}

/**
 * Positions [from, to) of a row's [nL, H, Lpadded, headDim] output (a batch pads L to its
 * longest row), as a compact [nL, H, to - from, headDim] copy.
 */
export function positionSlice(t: RowTensor, from: number, to: number): Float32Array {
  const [nL, H, L, Dh] = t.dims as [number, number, number, number];
  if (to > L || from < 0 || from > to) throw new Error(`asked for positions [${from}, ${to}) of an output with ${L}`);
  const src = t.data as Float32Array;
  const n = to - from;
  const out = new Float32Array(nL * H * n * Dh);
  for (let lh = 0; lh < nL * H; lh++) out.set(src.subarray((lh * L + from) * Dh, (lh * L + to) * Dh), lh * n * Dh);
  return out;
}
