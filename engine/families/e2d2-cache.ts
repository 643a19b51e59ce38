// E2D2's blocks in the engine's cache: per committed block, the encoder's own keys/values (the
// `encoder` past, what later encoder calls attend to) and the decoder layers' keys/values of the
// encoder's output (the `context` past, what every denoising step attends to), each
// [layers, kv_heads, length, head_dim], as they came back from the encoder graph.
import { positionSlice } from '../block-table.js';
import type { BlockTensors, CacheLayout } from '../cache-manager.js';
import type { RowTensor } from '../row-tensor.js';

export interface E2d2Shape {
  encLayers: number;
  decLayers: number;
  kvHeads: number;
  headDim: number;
}

export const ENCODER_PAST = 'encoder';
export const DECODER_CONTEXT = 'context';

export function e2d2Layout(s: E2d2Shape): CacheLayout {
  return {
    heads: s.kvHeads,
    headDim: s.headDim,
    groups: {
      [ENCODER_PAST]: { keys: 'encKeys', values: 'encValues', layers: s.encLayers },
      [DECODER_CONTEXT]: { keys: 'ctxKeys', values: 'ctxValues', layers: s.decLayers },
    },
  };
}

/** The encoder graph's outputs the cache keeps. */
export const ENCODER_OUTPUTS = ['present_keys', 'present_values', 'present_context_keys', 'present_context_values'] as const;

/** Positions [from, to) of an encoder call's outputs: one block's entry. */
export function encodedBlock(extra: Record<string, RowTensor> | undefined, from: number, to: number): BlockTensors {
  const [encKeys, encValues, ctxKeys, ctxValues] = ENCODER_OUTPUTS.map((name) => {
    const t = extra?.[name];
    if (!t) throw new Error(`the encoder graph returned no ${name}`);
    return positionSlice(t, from, to);
  }) as [Float32Array, Float32Array, Float32Array, Float32Array];
  return { encKeys, encValues, ctxKeys, ctxValues };
}
