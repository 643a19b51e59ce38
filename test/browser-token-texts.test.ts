// The per-position canvas text that `step` frames carry for the chat page, built from a real
// tokenizer (the Hugging Face binding, a small WordLevel vocabulary made here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from 'tokenizers';
import { TokenTexts, tokenTextsFor } from '../server/token-texts.js';

const vocab = { '[PAD]': 0, '[EOS]': 1, the: 2, cat: 3, sat: 4, '[MASK]': 5 };
const tokenizer = Tokenizer.fromString(JSON.stringify({
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [
    { id: 0, content: '[PAD]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: '[EOS]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 5, content: '[MASK]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: { type: 'WordLevel', vocab, unk_token: '[PAD]' },
}));

test('the canvas reads as text: null where masked, empty for special tokens', async () => {
  let calls = 0;
  const texts = new TokenTexts((ids) => {
    calls += 1;
    return tokenizer.decode(ids, true);
  }, 6, 5);
  assert.equal(texts.isReady, false);
  assert.throws(() => texts.canvasText([2]), /before ready/);
  await Promise.all([texts.ready(), texts.ready()]);
  assert.equal(calls, 6, 'the vocabulary is decoded once, whoever waits for it');
  assert.deepEqual(texts.canvasText([2, 5, 3, 1, 4, 5]), ['the', null, 'cat', '', 'sat', null]);
  await texts.ready();
  texts.canvasText([4]);
  assert.equal(calls, 6, 'lookups decode nothing');
});

test('ids beyond the vocabulary read as empty rather than failing the stream', async () => {
  const texts = new TokenTexts((ids) => tokenizer.decode(ids, true), 6, null);
  await texts.ready();
  assert.deepEqual(texts.canvasText([2, 99]), ['the', '']);
});

test('one table per tokenizer, shared by every request that streams steps', async () => {
  const tok = { decode: (ids: number[]) => tokenizer.decode(ids, true) };
  const a = tokenTextsFor(tok, 6, 5);
  assert.equal(tokenTextsFor(tok, 6, 5), a);
  assert.notEqual(tokenTextsFor({ decode: tok.decode }, 6, 5), a);
  await a.ready();
  assert.deepEqual(a.canvasText([3, 5]), ['cat', null]);
});
