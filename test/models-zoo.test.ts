// Every committed model directory is servable: its model.json passes the engine's schema, its
// files exist, and each graph (and each precision variant of it) loads in onnxruntime-node and
// answers with the declared shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { loadModelDir } from '../engine/manifest.js';

const ZOO = resolve(import.meta.dirname, '..', '..', 'models', 'zoo');

for (const name of readdirSync(ZOO)) {
  test(`models/zoo/${name} loads and runs`, async () => {
    const md = loadModelDir(join(ZOO, name));
    const m = md.manifest;
    for (const [role, spec] of Object.entries(m.graphs)) {
      if (!spec.inputs.every((i) => i === 'tokens' || i === 'attention_mask')) continue; // family graphs with caches have their own tests
      for (const path of [md.graphPaths[role]!, ...Object.values(md.variantPaths[role] ?? {})]) {
      const session = await ort.InferenceSession.create(path);
      assert.deepEqual([...session.inputNames].sort(), [...spec.inputs].sort());
      const L = 6;
      const ids = BigInt64Array.from({ length: L }, (_, i) => BigInt((i * 7) % m.vocab_size));
      const ones = new BigInt64Array(L).fill(1n);
      const out = await session.run({
        tokens: new ort.Tensor('int64', ids, [1, L]),
        attention_mask: new ort.Tensor('int64', ones, [1, L]),
      });
      const logits = out[spec.outputs[0]!]!;
      assert.deepEqual(logits.dims, [1, L, m.vocab_size]);
      assert.ok((logits.data as Float32Array).every(Number.isFinite));
      await session.release();
      }
    }
  });
}
