// Per-sequence random numbers. Each sequence owns one generator seeded from its request's seed,
// so its tokens do not depend on which other sequences share its batches.
import prand from 'pure-rand';

export class Rng {
  private gen: prand.RandomGenerator;

  constructor(seed: number) {
    // pure-rand's xoroshiro128plus(seed) starts from a state whose first outputs barely depend
    // on the seed (the first uniform is >= 0.5 for every seed), so every sequence's first draw
    // was biased. Spread the seed over all 128 bits of state first.
    const s = seed | 0;
    this.gen = prand.xoroshiro128plus.fromState([mix32(s, 1), mix32(s, 2), mix32(s, 3), mix32(s, 4)]);
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

/** murmur3's 32-bit finaliser of seed + lane * golden ratio: distinct, well-spread state words. */
function mix32(seed: number, lane: number): number {
  let z = (seed + Math.imul(lane, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}
