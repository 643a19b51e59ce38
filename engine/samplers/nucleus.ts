// Top-k and top-p (nucleus) cuts of a distribution, for every sampler (the masked and ASSD
// samplers' categorical.ts, Duo's and ReMDM's x0 distributions): one implementation, so that
// the same logits and settings keep the same tokens whichever family samples them.

// Scratch for truncate's selection, grown on demand (one engine thread, no reentrancy).
let scratch = new Float64Array(0);

/**
 * Where the cut of the descending order of `a` falls: `kept` is the smallest n >= 1 whose
 * top-n mass reaches topP, or k, or all; `thr` is the n-th largest value and `above` how many
 * values are strictly larger. Quickselect with a three-way partition (expected O(V); a flat
 * distribution that keeps most of the vocabulary is the common case for a small model, where
 * sorting dominated the step). Reorders `a`.
 */
function nucleusCut(a: Float64Array, k: number, topP: number): { thr: number; kept: number; above: number } {
  let lo = 0;
  let hi = a.length;
  let mass = 0; // of the values already kept, each larger than everything in [lo, hi)
  let count = 0;
  for (;;) {
    const pivot = a[lo + ((hi - lo) >> 1)]!;
    // [lo, lt): > pivot, [lt, gt]: == pivot, (gt, hi): < pivot.
    let lt = lo;
    let i = lo;
    let gt = hi - 1;
    while (i <= gt) {
      const v = a[i]!;
      if (v > pivot) {
        a[i] = a[lt]!;
        a[lt] = v;
        lt++;
        i++;
      } else if (v < pivot) {
        a[i] = a[gt]!;
        a[gt] = v;
        gt--;
      } else {
        i++;
      }
    }
    let massG = 0;
    for (let j = lo; j < lt; j++) massG += a[j]!;
    const nG = lt - lo;
    if (nG > 0 && (mass + massG >= topP || count + nG >= k)) {
      hi = lt; // the cut falls among the larger values
      continue;
    }
    const nE = gt - lt + 1;
    let m = 0;
    let mE = mass + massG;
    while (m < nE) {
      mE += pivot;
      m++;
      if (mE >= topP || count + nG + m >= k) break;
    }
    if (m < nE || mE >= topP || count + nG + m >= k || gt + 1 === hi) {
      return { thr: pivot, kept: count + nG + m, above: count + nG };
    }
    mass = mE;
    count += nG + nE;
    lo = gt + 1;
  }
}

/**
 * Keep the k most likely tokens, then the smallest prefix of them whose mass reaches topP
 * (the most likely token always stays), and renormalise. Ties at the cut are broken by
 * token id (lower ids stay), so the result does not depend on how the cut was found.
 */
export function truncate(p: Float64Array, k: number, topP: number): void {
  const V = p.length;
  if (scratch.length < V) scratch = new Float64Array(V);
  const a = scratch.subarray(0, V);
  a.set(p);
  const { thr, kept, above } = nucleusCut(a, k, topP);
  let tiesLeft = kept - above;
  let total = 0;
  for (let j = 0; j < V; j++) {
    const v = p[j]!;
    if (v > thr || (v === thr && tiesLeft-- > 0)) total += v;
    else p[j] = 0;
  }
  const inv = 1 / total;
  for (let j = 0; j < V; j++) p[j]! *= inv;
}
