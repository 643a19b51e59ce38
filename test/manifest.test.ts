import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest, ManifestError, MANIFEST_FORMAT } from '../engine/manifest.js';

function mdlm(): Record<string, unknown> {
  return {
    format: MANIFEST_FORMAT,
    name: 'tiny',
    family: 'mdlm',
    vocab_size: 10,
    max_length: 16,
    special_tokens: { mask: 9, eos: 1, bos: null, pad: 0 },
    architecture: { d_model: 8, n_layers: 1, n_heads: 2, head_dim: 4 },
    noise: { type: 'masked', schedule: 'loglinear' },
    graphs: { denoiser: { file: 'denoiser.onnx', inputs: ['tokens'], outputs: ['logits'] } },
    samplers: ['ddpm'],
  };
}

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`);
    return err.field;
  }
  assert.fail('expected a ManifestError');
}

test('a valid manifest parses and gets its defaults', () => {
  const m = parseManifest(mdlm());
  assert.equal(m.tokenizer, 'tokenizer.json');
  assert.equal(m.time_conditioning, false);
  assert.equal(m.noise?.eps, 1e-3);
  assert.deepEqual(m.defaults, {});
});

test('errors name the offending field', () => {
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), vocab_size: -1 })), 'vocab_size');
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), family: 'gpt' })), 'family');
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), graphs: {} })), 'graphs.denoiser');
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), noise: undefined })), 'noise');
  assert.equal(
    fieldOf(() => parseManifest({ ...mdlm(), special_tokens: { mask: 10, eos: 1 } })),
    'special_tokens.mask',
  );
  assert.equal(
    fieldOf(() => parseManifest({ ...mdlm(), family: 'bd3lm', graphs: { block: { file: 'b.onnx', inputs: ['tokens'], outputs: ['logits'] } } })),
    'block',
  );
  const arch = { d_model: 8, n_layers: 1, n_heads: 4, head_dim: 4 };
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), architecture: { ...arch, n_kv_heads: 3 } })), 'architecture.n_kv_heads');
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), architecture: { ...arch, n_kv_heads: 0 } })), 'architecture.n_kv_heads');
  assert.equal(parseManifest({ ...mdlm(), architecture: { ...arch, n_kv_heads: 2 } }).architecture.n_kv_heads, 2);
});

test('a loopholing manifest (LDDM-M on mdlm, LDDM-U on duo) must take and return the latent', () => {
  const latent = { file: 'denoiser.onnx', inputs: ['tokens', 'attention_mask', 'sigma', 'latent_in'], outputs: ['logits', 'latent_out'] };
  const lddmu = {
    ...mdlm(), family: 'duo', time_conditioning: true, noise: { type: 'uniform', schedule: 'loglinear' },
    special_tokens: { mask: null, eos: 1, bos: null, pad: 0 }, loopholing: { latent_dim: 8 }, graphs: { denoiser: latent }, samplers: ['duo_greedy', 'duo'],
  };
  assert.deepEqual(parseManifest(lddmu).loopholing, { latent_dim: 8 });
  assert.equal(fieldOf(() => parseManifest({ ...lddmu, graphs: { denoiser: { ...latent, inputs: ['tokens', 'attention_mask', 'sigma'] } } })), 'graphs.denoiser.inputs');
  assert.equal(fieldOf(() => parseManifest({ ...lddmu, graphs: { denoiser: { ...latent, outputs: ['logits'] } } })), 'graphs.denoiser.outputs');
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), loopholing: { latent_dim: 8 } })), 'graphs.denoiser.inputs');
  const block = { file: 'b.onnx', inputs: ['tokens', 'latent_in'], outputs: ['logits', 'latent_out'] };
  assert.equal(fieldOf(() => parseManifest({ ...mdlm(), family: 'bd3lm', block: { size: 4, sizes: [4] }, graphs: { block }, loopholing: { latent_dim: 8 } })), 'loopholing');
});
