// The tokenizer module on the test model's own tokenizer.json (whatever kind the models side
// trained): round trips and incremental detokenization in every chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelDir } from '../engine/manifest.js';
import { IncrementalDetokenizer } from '../tokenizer/detokenizer.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { TEST_MODEL_DIR } from './helpers/served.js';

const dir = loadModelDir(TEST_MODEL_DIR);
const tok = TextTokenizer.fromFile(dir.tokenizerPath);
const TEXT = 'The old man said: "It is 12 o\'clock," and  went\nhome.';

test('the model tokenizer round-trips plain text', async () => {
  const ids = await tok.encode(TEXT);
  assert.ok(ids.length > 0);
  for (const id of ids) assert.ok(id < dir.manifest.vocab_size);
  assert.equal(await tok.decode(ids), TEXT);
});

for (const chunk of [1, 3, 8]) {
  test(`incremental detokenization with the model tokenizer, ${chunk} token(s) per commit`, async () => {
    const ids = await tok.encode(TEXT);
    const detok = new IncrementalDetokenizer(tok);
    let out = '';
    for (let i = 0; i < ids.length; i += chunk) out += await detok.push(ids.slice(i, i + chunk));
    out += await detok.flush();
    assert.equal(out, await tok.decode(ids));
  });
}
