// Loopholing (LDDM): the network returns its last hidden state and reads it back at the next
// step (latent_out -> latent_in), so what a step knew is not thrown away with the sampled
// tokens. The latent belongs to one sequence and lives as long as it does; batching packs
// each sequence's latent into its row of the batch and unpacks the new one after the call.
// Because the latent changes at every step, a step whose tokens did not change is still a
// different network call: the ddpm_cache shortcut (reuse logits when nothing changed) must
// stay off for these models.
import type { Manifest } from './manifest.js';

/** The latent width of a loopholing model, or null for a model without the pathway. */
export function latentDim(m: Pick<Manifest, 'loopholing'>): number | null {
  return m.loopholing?.latent_dim ?? null;
}

/** Whether a step whose canvas did not change may reuse the previous step's logits. */
export function mayReuseLogits(m: Pick<Manifest, 'loopholing' | 'time_conditioning'>): boolean {
  return !m.loopholing && !m.time_conditioning;
}

/** One sequence's carried latent: [length, dim] float32, zero before the first call. */
export class SequenceLatent {
  private buf: Float32Array;
  private len: number;

  constructor(
    readonly dim: number,
    length: number,
  ) {
    this.len = length;
    this.buf = new Float32Array(length * dim);
  }

  get length(): number {
    return this.len;
  }

  get data(): Float32Array {
    return this.buf.subarray(0, this.len * this.dim);
  }

  /**
   * Change the number of positions (the sequence's row grew, e.g. a new block was opened).
   * Positions kept keep their latent; new ones start at zero, as at the first call.
   */
  resize(length: number): void {
    if (length === this.len) return;
    const next = new Float32Array(length * this.dim);
    next.set(this.buf.subarray(0, Math.min(length, this.len) * this.dim));
    this.buf = next;
    this.len = length;
  }

  /**
   * Drop the first k positions (the row's context slid left when a window committed): the
   * rest keep their latent at their new positions.
   */
  dropFront(k: number): void {
    if (k <= 0) return;
    const n = Math.max(0, this.len - k);
    this.buf.copyWithin(0, k * this.dim, this.len * this.dim);
    this.buf.fill(0, n * this.dim);
    this.len = n;
  }

  /** Forget everything (zero latent), as for a fresh sequence. */
  reset(): void {
    this.buf.fill(0);
  }
}

/**
 * Pack latents into a batch [B, L, D] for latent_in: row b holds latents[b] in its first
 * positions and zeros after (padding, masked out by attention_mask).
 */
export function packLatents(latents: readonly SequenceLatent[], L: number, D: number): Float32Array {
  const out = new Float32Array(latents.length * L * D);
  latents.forEach((lat, b) => {
    if (lat.dim !== D) throw new RangeError(`latent width ${lat.dim} does not match the model's ${D}`);
    if (lat.length > L) throw new RangeError(`latent of ${lat.length} positions does not fit a batch row of ${L}`);
    out.set(lat.data, b * L * D);
  });
  return out;
}

/** Copy each row of latent_out [B, L, D] back into its sequence's latent. */
export function unpackLatents(out: Float32Array, latents: readonly SequenceLatent[], L: number, D: number): void {
  if (out.length !== latents.length * L * D) {
    throw new RangeError(`latent_out holds ${out.length} values, expected ${latents.length}x${L}x${D}`);
  }
  latents.forEach((lat, b) => {
    lat.data.set(out.subarray(b * L * D, b * L * D + lat.length * D));
  });
}
