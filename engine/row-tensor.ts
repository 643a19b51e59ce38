// Per-row tensors and how a batch is made of them. A sequence describes its own row (dims
// without the batch axis); the scheduler stacks the rows of one call, padding every axis to
// the longest row, so families with extra graph inputs (sigma, a carried latent, a KV cache
// of committed blocks) batch through the same path as plain token rows.

export type RowData = Float32Array | BigInt64Array;

export interface RowTensor {
  /** ONNX element type the graph expects. */
  type: 'float32' | 'int64';
  data: RowData;
  /** Dims of this row alone (no batch axis); [] for a per-row scalar such as sigma. */
  dims: number[];
  /** Value for positions a shorter row lacks (0 unless the input needs another). */
  pad?: number;
}

export interface BatchTensor {
  type: 'float32' | 'int64';
  data: RowData;
  /** [B, ...max dims of the rows]. */
  dims: number[];
}

/** The `positions` input of a row: start, start + 1, ..., start + n - 1 (int64). */
export function positionsRow(start: number, n: number): RowTensor {
  return { type: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), dims: [n] };
}

function size(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Stacks rows into [B, ...maxDims], each row copied to the top-left corner of its slot. */
export function stackRows(rows: readonly RowTensor[]): BatchTensor {
  const first = rows[0]!;
  const rank = first.dims.length;
  for (const r of rows) {
    if (r.dims.length !== rank || r.type !== first.type) throw new Error('rows of one input differ in rank or type');
    if (r.data.length !== size(r.dims)) throw new Error(`row data has ${r.data.length} values, dims say ${size(r.dims)}`);
  }
  const maxDims = Array.from({ length: rank }, (_, a) => Math.max(...rows.map((r) => r.dims[a]!)));
  const slot = size(maxDims);
  const B = rows.length;
  const out: RowData = first.type === 'int64' ? new BigInt64Array(B * slot) : new Float32Array(B * slot);
  rows.forEach((r, b) => {
    const pad = r.pad ?? 0;
    if (pad !== 0) {
      if (out instanceof BigInt64Array) out.fill(BigInt(pad), b * slot, (b + 1) * slot);
      else out.fill(pad, b * slot, (b + 1) * slot);
    }
    copyInto(out, b * slot, maxDims, r.data, r.dims);
  });
  return { type: first.type, data: out, dims: [B, ...maxDims] };
}

// Copies src (dims sdims) into dst at base, laid out with the larger dims ddims; the innermost
// axis goes as one contiguous block.
function copyInto(dst: RowData, base: number, ddims: readonly number[], src: RowData, sdims: readonly number[]): void {
  const rank = sdims.length;
  if (rank === 0) { (dst as Float32Array)[base] = (src as Float32Array)[0]!; return; }
  const inner = sdims[rank - 1]!;
  const outer = size(sdims.slice(0, -1));
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < outer; o++) {
    let d = 0;
    for (let a = 0; a < rank - 1; a++) d = d * ddims[a]! + idx[a]!;
    d = d * ddims[rank - 1]!;
    const s = o * inner;
    (dst as Float32Array).set((src as Float32Array).subarray(s, s + inner), base + d);
    for (let a = rank - 2; a >= 0; a--) {
      if (++idx[a]! < sdims[a]!) break;
      idx[a] = 0;
    }
  }
}

/** Row b of a batch output [B, ...dims], as a view (no copy). */
export function rowOf(t: BatchTensor, b: number): RowTensor {
  const slot = size(t.dims.slice(1));
  return { type: t.type, data: t.data.subarray(b * slot, (b + 1) * slot) as RowData, dims: t.dims.slice(1) };
}
