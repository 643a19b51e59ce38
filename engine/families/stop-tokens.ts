// The tokens that end a request: its stop_token_ids plus the model's [EOS], none of them when
// the request ignores EOS. Every family that streams text stops on the same set.
import type { GenerationParams } from '../protocol.js';

export function stopTokens(params: GenerationParams, eosId: number | null): Set<number> {
  const stops = new Set(params.ignoreEos ? [] : params.stopTokenIds);
  if (!params.ignoreEos && eosId !== null) stops.add(eosId);
  return stops;
}
