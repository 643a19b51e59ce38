// Per-sequence random numbers. Each sequence owns one generator seeded from its request's seed,
// so its tokens do not depend on which other sequences share its batches.
import prand from 'pure-rand';

export class Rng {
  private gen: prand.RandomGenerator;

  constructor(seed: number) {
    this.gen = prand.xoroshiro128plus(seed | 0);
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.gen.unsafeNext() >>> 5; // 27 bits
    const lo = this.gen.unsafeNext() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
