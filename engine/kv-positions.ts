// Per-position views of one row's keys or values laid out [lanes, L, Dh] (lanes = layers x
// heads, the `present_*` layout of a row): the whole-sequence caches of issue 15 keep K/V for
// every position of prompt + window and feed a call the positions it does not query, which are
// not one contiguous run when the cache holds both a prefix and a suffix (Fast-dLLM's dual cache).

/** Row layout of a K/V tensor: lanes x length x headDim floats. */
export interface KvLayout {
  lanes: number;
  length: number;
  headDim: number;
}

/** [lanes, keep.length, Dh]: the positions `keep` of `data`, in that order. */
export function selectPositions(data: Float32Array, at: KvLayout, keep: readonly number[]): Float32Array {
  const { lanes, length: L, headDim: Dh } = at;
  if (data.length !== lanes * L * Dh) throw new Error(`K/V has ${data.length} floats, layout wants ${lanes * L * Dh}`);
  const P = keep.length;
  const out = new Float32Array(lanes * P * Dh);
  for (let lane = 0; lane < lanes; lane++) {
    for (let j = 0; j < P; j++) {
      const p = keep[j]!;
      if (p < 0 || p >= L) throw new Error(`position ${p} outside 0..${L - 1}`);
      const src = (lane * L + p) * Dh;
      out.set(data.subarray(src, src + Dh), (lane * P + j) * Dh);
    }
  }
  return out;
}
