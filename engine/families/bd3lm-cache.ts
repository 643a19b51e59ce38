// BD3-LM's blocks in the engine's cache: each holds the block graph's own keys and values,
// [n_layers, n_heads, length, head_dim], and all of them form one past (past_keys / past_values).
import { positionSlice } from '../block-table.js';
import type { BlockTensors, CacheLayout } from '../cache-manager.js';
import type { Manifest } from '../manifest.js';
import type { RowTensor } from '../row-tensor.js';

export const BD3LM_PAST = 'past';

export function bd3lmLayout(m: Pick<Manifest, 'architecture'>): CacheLayout {
  const a = m.architecture;
  return { heads: a.n_heads, headDim: a.head_dim, groups: { [BD3LM_PAST]: { keys: 'keys', values: 'values', layers: a.n_layers } } };
}

/** The first `length` positions of a call's present_keys / present_values: one block's entry. */
export function presentBlock(extra: Record<string, RowTensor> | undefined, length: number): BlockTensors {
  const k = extra?.present_keys;
  const v = extra?.present_values;
  if (!k || !v) throw new Error('the block graph returned no present_keys / present_values');
  return { keys: positionSlice(k, 0, length), values: positionSlice(v, 0, length) };
}
