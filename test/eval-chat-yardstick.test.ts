// The chat yardstick: its scoring functions on pairs with known answers, the pair picker, and a
// CI-sized run through the real engine on the tiny committed model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lcsLength, normalizedWords, rougeL, tokenF1 } from '../engine/eval/chat-score.js';
import { chatYardstick, pickPairs, type ChatPair } from '../engine/eval/chat-yardstick.js';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test('words are SQuAD-normalised: lower case, no punctuation, no articles', () => {
  assert.deepEqual(normalizedWords('A dog is THE member, of a pack!'), ['dog', 'is', 'member', 'of', 'pack']);
  assert.deepEqual(normalizedWords('  ...  '), []);
});

test('token F1 on known pairs', () => {
  assert.equal(tokenF1('A dog is a domestic animal.', 'a dog is a domestic animal'), 1);
  assert.equal(tokenF1('cat', 'dog'), 0);
  assert.equal(tokenF1('', 'dog'), 0);
  assert.equal(tokenF1('', ''), 1);
  // [cat, sat] against [cat, sat, down]: precision 1, recall 2/3, F1 0.8.
  assert.ok(close(tokenF1('The cat sat.', 'cat sat down'), 0.8));
  // Multisets: a repeated word counts once per occurrence in the reference.
  // [dog, dog, dog] vs [dog, runs]: common 1, precision 1/3, recall 1/2, F1 0.4.
  assert.ok(close(tokenF1('dog dog dog', 'dog runs'), 0.4));
});

test('ROUGE-L rewards order where token F1 does not', () => {
  assert.equal(lcsLength(['a', 'b', 'c', 'd'], ['a', 'c', 'b', 'd']), 3);
  assert.equal(lcsLength([], ['x']), 0);
  assert.equal(tokenF1('cat dog bird fish', 'cat bird dog fish'), 1);
  assert.ok(close(rougeL('cat dog bird fish', 'cat bird dog fish'), 0.75));
  assert.equal(rougeL('fish bird dog cat', 'cat dog bird fish'), 0.25);
  assert.equal(rougeL('To run means to move fast.', 'to run means to move fast'), 1);
});

const pair = (kind: string, key: string, q: string, a: string): ChatPair =>
  ({ kind, key, messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });

test('pickPairs takes kinds in turn and skips rows without an assistant answer', () => {
  const rows = [pair('define', 'a', 'q', 'x'), pair('define', 'b', 'q', 'x'), pair('define', 'c', 'q', 'x'),
    pair('command', 'ls', 'q', 'x'), { kind: 'define', key: 'bad', messages: [{ role: 'user', content: 'q' }] }];
  assert.deepEqual(pickPairs(rows, 3).map((p) => p.key), ['ls', 'a', 'b']);
  assert.deepEqual(pickPairs(rows, 10).map((p) => p.key), ['ls', 'a', 'b', 'c']);
});

test('chat yardstick through the engine on the tiny model: answers scored against the references', async () => {
  const pairs = [
    pair('define', 'dog', 'What does dog mean?', 'A dog is a domesticated animal.'),
    pair('command', 'ls', 'What does the ls command do?', 'ls is a command to list directory contents.'),
    { kind: 'smalltalk', key: 'hi', messages: [{ role: 'user', content: 'Hello!' }, { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Thanks.' }, { role: 'assistant', content: 'You are welcome!' }] },
  ];
  const r = await chatYardstick({ model: 'models/zoo/tiny-mdlm', judge: 'models/zoo/judge', pairs, maxTokens: 12, threads: 1 });
  assert.equal(r.pairs, 3);
  assert.equal(r.exchanges.length, 3);
  assert.deepEqual(Object.keys(r.byKind), ['command', 'define', 'smalltalk']);
  for (const e of r.exchanges) {
    const ref = e.messages[e.messages.length - 1]!.content;
    assert.equal(e.f1, tokenF1(e.answer, ref));
    assert.equal(e.rougeL, rougeL(e.answer, ref));
  }
  assert.ok(r.meanAnswerTokens > 0 && r.meanAnswerTokens <= 12, `mean answer tokens ${r.meanAnswerTokens}`);
  assert.ok(close(r.f1, r.exchanges.reduce((a, e) => a + e.f1, 0) / 3));
  if (r.emptyAnswers < 3) assert.ok(r.answerGenPpl !== null && Number.isFinite(r.answerGenPpl) && r.answerGenPpl > 1);
});
