import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { IncrementalDetokenizer } from '../tokenizer/detokenizer.js';
import { StopMatcher } from '../tokenizer/stop.js';
import { applyChatTemplate, DEFAULT_CHAT_TEMPLATE } from '../tokenizer/chat.js';
import { byteBpeTokenizerJson, EOS_TOKEN } from './fixtures/byte-bpe.js';

const tok = TextTokenizer.fromJson(byteBpeTokenizerJson());
const TEXT = 'hello the café 🙂 naïve — end';

test('encode/decode round-trips and merges apply', async () => {
  const ids = await tok.encode(TEXT);
  assert.equal(await tok.decode(ids), TEXT);
  assert.ok(ids.includes(tok.tokenToId('hello')!), 'the hello merge is used');
  // 🙂 is four UTF-8 bytes and no merge covers it: four byte tokens.
  assert.equal((await tok.encode('🙂')).length, 4);
});

test('special tokens never reach the text', async () => {
  const eos = tok.tokenToId(EOS_TOKEN)!;
  const ids = [...(await tok.encode('hi')), eos];
  assert.equal(await tok.decode(ids), 'hi');
});

for (const chunk of [1, 2, 3, 5]) {
  test(`incremental detokenization in chunks of ${chunk} token(s) rebuilds the text and never emits half a character`, async () => {
    const ids = await tok.encode(TEXT);
    const detok = new IncrementalDetokenizer(tok);
    const deltas: string[] = [];
    for (let i = 0; i < ids.length; i += chunk) deltas.push(await detok.push(ids.slice(i, i + chunk)));
    deltas.push(await detok.flush());
    assert.equal(deltas.join(''), TEXT);
    for (const d of deltas) assert.ok(!d.includes('\uFFFD'), `delta ${JSON.stringify(d)} holds a replacement character`);
  });
}

test('a character split over commits is held until it is complete', async () => {
  const ids = await tok.encode('🙂');
  const detok = new IncrementalDetokenizer(tok);
  assert.equal(await detok.push(ids.slice(0, 3)), '');
  assert.equal(await detok.push(ids.slice(3)), '🙂');
  assert.equal(await detok.flush(), '');
});

test('flush gives back an incomplete trailing character as U+FFFD', async () => {
  const ids = await tok.encode('a🙂');
  const detok = new IncrementalDetokenizer(tok);
  assert.equal(await detok.push(ids.slice(0, 3)), 'a');
  assert.equal(await detok.flush(), '\uFFFD');
});

test('stop strings: match within one delta', () => {
  const m = new StopMatcher(['STOP']);
  assert.deepEqual(m.push('abc STOP def'), { text: 'abc ', stopped: true });
  assert.deepEqual(m.push('more'), { text: '', stopped: true });
});

test('stop strings: a match spanning deltas is held back, then cut', () => {
  const m = new StopMatcher(['\n\nUser:']);
  assert.deepEqual(m.push('Hello\n'), { text: 'Hello', stopped: false });
  assert.deepEqual(m.push('\nUs'), { text: '', stopped: false });
  assert.deepEqual(m.push('er: hi'), { text: '', stopped: true });
});

test('stop strings: held text that does not complete a match is released', () => {
  const m = new StopMatcher(['abc', 'xyz']);
  assert.deepEqual(m.push('1ab'), { text: '1', stopped: false });
  assert.deepEqual(m.push('d'), { text: 'abd', stopped: false });
  assert.deepEqual(m.push('x'), { text: '', stopped: false });
  assert.equal(m.flush(), 'x');
});

test('stop strings: the earliest of several matches wins', () => {
  const m = new StopMatcher(['later', 'ear']);
  assert.deepEqual(m.push('the early and later'), { text: 'the ', stopped: true });
});

test('stop strings over a real token stream: detokenizer then matcher', async () => {
  const ids = await tok.encode('one two 🙂 three four');
  const detok = new IncrementalDetokenizer(tok);
  const m = new StopMatcher(['🙂 th']);
  let out = '';
  let stopped = false;
  for (const id of ids) {
    const r = m.push(await detok.push([id]));
    out += r.text;
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  assert.ok(stopped);
  assert.equal(out, 'one two ');
});

test('chat template: default and manifest templates', () => {
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Say {{role}}' },
  ];
  assert.equal(applyChatTemplate(msgs, DEFAULT_CHAT_TEMPLATE), 'system: Be brief.\nuser: Say {{role}}\nassistant:');
  assert.equal(
    applyChatTemplate(msgs, { message: '<{{role}}>{{content}}', generation_prompt: '<assistant>', separator: '|' }),
    '<system>Be brief.|<user>Say {{role}}<assistant>',
  );
});
