// What BD3-LM and E2D2 share as block-by-block decoders: how many committed blocks fit beside
// the one being generated, and which tokens of a finished block go out to the client.

/** Committed blocks that fit beside the current one in the model's length. */
export function windowBlocks(maxLength: number, blockSize: number): number {
  return Math.max(0, Math.floor((maxLength - blockSize) / blockSize));
}

/**
 * The finished block's new tokens up to (not including) the first stop token and at most
 * `room` of them; `stopped` says whether a stop token cut it.
 */
export function finalTokens(block: Int32Array, stops: Set<number>, room: number): { fresh: number[]; stopped: boolean } {
  const fresh: number[] = [];
  for (const tok of block) {
    if (stops.has(tok)) return { fresh, stopped: true };
    if (fresh.length >= room) break;
    fresh.push(tok);
  }
  return { fresh, stopped: false };
}
