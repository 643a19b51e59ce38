// The converter for published E2D2 OpenWebText checkpoints (kuleshov-group/e2d2 `e2d2-owt`: a
// Qwen3-style encoder and decoder, grouped-query attention): a small synthetic checkpoint with the
// published key names and the GPT-2 vocabulary goes through the real command line; its graphs
// match PyTorch through onnxruntime-node (each graph, and block by block against the uncached
// forward); the directory is served by the real engine process and server to the official openai
// client, with key/value caches of n_kv_heads heads. Weights, reference semantics and bad
// checkpoints: models/tests/test_convert_e2d2.py.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type OpenAI from 'openai';
import { loadModelDir } from '../engine/manifest.js';
import { checkE2d2Cases, e2d2ChainWorst } from './helpers/e2d2-parity.js';
import { serveWithClient, type ServedClient } from './helpers/openai.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const TOL = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), 'dlm-convert-e2d2-'));
let sc: ServedClient;

before(async () => {
  const py = (args: string[]) => {
    const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  py(['-c', `import sys; sys.path.insert(0, 'tests')\nfrom fake_checkpoints import write_e2d2_owt\nwrite_e2d2_owt('${tmp}/ckpt', 'safetensors')`]);
  py(['-m', 'dlm.convert_e2d2', '--checkpoint', `${tmp}/ckpt`, '--out', `${tmp}/model`, '--name', 'fake-e2d2-owt', '--parity-out', `${tmp}/cases`]);
  sc = await serveWithClient({ modelDir: `${tmp}/model` });
});
after(async () => { await sc?.s.close(); });

test('the converted graphs match PyTorch, and block by block through the engine cache view match the uncached forward', async () => {
  await checkE2d2Cases(`${tmp}/cases`, TOL);
  const worst = await e2d2ChainWorst(`${tmp}/cases`);
  assert.ok(worst <= TOL, `block-by-block logits differ from the full forward by ${worst}`);
});

test('the converted directory is an e2d2 model with grouped-query key/value heads', () => {
  const m = loadModelDir(`${tmp}/model`).manifest;
  assert.equal(m.family, 'e2d2');
  assert.equal(m.architecture.n_heads, 4);
  assert.equal(m.architecture.n_kv_heads, 2);
  assert.deepEqual(m.block, { size: 4, sizes: [4] });
});

test('served: a completion streams, and its streamed text equals its final text', async () => {
  // Nine prompt tokens: two whole blocks encoded as the prompt's prefill, one opening block 3.
  const params = { model: sc.model, prompt: 'The quick brown fox jumps over the lazy dog', max_tokens: 10, ignore_eos: true, seed: 5 };
  const r = await sc.client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 10);
  assert.equal(r.usage!.prompt_tokens, 9);
  const stream = await sc.client.completions.create({ ...params, stream: true } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  let pieces = 0;
  for await (const c of stream) {
    const t = c.choices[0]?.text ?? '';
    if (t) pieces++;
    text += t;
  }
  assert.equal(text, r.choices[0]!.text);
  assert.ok(text.length > 0);
  assert.ok(pieces >= 2, `the text came in ${pieces} pieces (blocks stream as they finish)`);
});
