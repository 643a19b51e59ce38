// Matrix-multiply FLOPs of one denoiser row (a sequence of L positions) of the DiT backbone
// that MDLM, Duo and BD3-LM share, from the manifest's architecture: per layer the q/k/v and
// output projections (4 d^2 per position), the MLP (2 r d^2), the attention scores and their
// weighted sum (2 L d each), then the output head (d V). Two FLOPs per multiply-add.
// Embedding lookups, norms, softmax and the adaLN modulation (once per row) are left out:
// they are not matmuls and are small next to them.
import type { Manifest } from '../engine/manifest.js';

export interface DitShape {
  d: number;
  layers: number;
  mlpRatio: number;
  vocab: number;
}

export function ditShape(m: Manifest): DitShape {
  const a = m.architecture;
  return { d: a.d_model, layers: a.n_layers, mlpRatio: typeof a.mlp_ratio === 'number' ? a.mlp_ratio : 4, vocab: m.vocab_size };
}

export function rowFlops(s: DitShape, L: number): number {
  const perLayer = 2 * L * (4 * s.d * s.d + 2 * s.mlpRatio * s.d * s.d) + 2 * 2 * L * L * s.d;
  return s.layers * perLayer + 2 * L * s.d * s.vocab;
}

/** One weight product of a row batch: [rows, k] x [k, n], `count` times per forward. */
export interface Product { k: number; n: number; count: number }

/**
 * The weight products one forward of the DiT runs (the ones the int8 variants quantize): per
 * layer the fused q/k/v projection, the attention output, the MLP's two, then the output head.
 */
export function modelProducts(s: DitShape): Product[] {
  const h = s.mlpRatio * s.d;
  return [
    { k: s.d, n: 3 * s.d, count: s.layers },
    { k: s.d, n: s.d, count: s.layers },
    { k: s.d, n: h, count: s.layers },
    { k: h, n: s.d, count: s.layers },
    { k: s.d, n: s.vocab, count: 1 },
  ];
}
