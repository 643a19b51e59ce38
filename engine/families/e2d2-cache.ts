// One sequence's E2D2 encoder state: per committed block, the encoder's own keys/values (what
// later encoder calls attend to) and the decoder layers' keys/values of the encoder's output
// (what every denoising step attends to). Blocks are stored as they came back from the encoder
// graph and concatenated into the graphs' [nL, H, P, head_dim] layout only when a new block
// changed them, so the many decoder steps of one block reuse one tensor.
//
// The lead moves this into the shared cache pool later; the sequence only asks for tensors and
// appends or drops whole blocks, so that swap does not touch the decoding loop.
import type { RowTensor } from '../row-tensor.js';

export interface E2d2Shape {
  encLayers: number;
  decLayers: number;
  nHeads: number;
  headDim: number;
}

/** One committed block: [nL, H, length, headDim] each. */
export interface EncodedBlock {
  length: number;
  encKeys: Float32Array;
  encValues: Float32Array;
  ctxKeys: Float32Array;
  ctxValues: Float32Array;
}

export interface PastTensors {
  keys: RowTensor;
  values: RowTensor;
  mask: RowTensor;
}

type Part = 'encKeys' | 'encValues' | 'ctxKeys' | 'ctxValues';

export class E2d2Cache {
  private readonly blocks: EncodedBlock[] = [];
  private past: PastTensors | null = null;
  private context: PastTensors | null = null;

  constructor(readonly shape: E2d2Shape) {}

  /** Tokens whose state is held. */
  get length(): number {
    return this.blocks.reduce((n, b) => n + b.length, 0);
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  get bytes(): number {
    return this.blocks.reduce((n, b) => n + 4 * (b.encKeys.length + b.encValues.length + b.ctxKeys.length + b.ctxValues.length), 0);
  }

  append(block: EncodedBlock): void {
    this.blocks.push(block);
    this.past = this.context = null;
  }

  /** Drop the oldest block (it left the attention window). */
  dropOldest(): void {
    this.blocks.shift();
    this.past = this.context = null;
  }

  clear(): void {
    this.blocks.length = 0;
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
  private concat(k: Part, v: Part, nL: number): PastTensors {
    const { nHeads: H, headDim: Dh } = this.shape;
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
