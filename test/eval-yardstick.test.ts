// The yardstick's two numbers: unigram entropy (exact on small cases) and Gen PPL under the
// shipped judge (text from the corpus's world scores far better than shuffled tokens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Judge, score, unigramEntropy } from '../engine/eval/judge.js';

test('unigram entropy: zero for one repeated token, log(n) for n distinct tokens', () => {
  assert.equal(unigramEntropy([7, 7, 7, 7]), 0);
  assert.ok(Math.abs(unigramEntropy([1, 2, 3, 4]) - Math.log(4)) < 1e-12);
  assert.ok(Math.abs(unigramEntropy([1, 1, 2, 2]) - Math.log(2)) < 1e-12);
});

test('Gen PPL under the judge: plain English beats the same words shuffled', async () => {
  const judge = await Judge.open('models/zoo/judge', 1);
  try {
    const text = 'And God said unto Moses, Go in unto Pharaoh, and tell him that the people shall go out of the land.';
    const words = text.split(' ');
    // A fixed derangement of the words (no randomness: the test is reproducible).
    const shuffled = words.map((_, i) => words[(i * 7 + 3) % words.length]).join(' ');
    const good = await score(judge, [{ text, ids: [] }]);
    const bad = await score(judge, [{ text: shuffled, ids: [] }]);
    assert.ok(good.judgedTokens > 10);
    assert.ok(good.genPpl < bad.genPpl / 3, `ordered ${good.genPpl.toFixed(1)} vs shuffled ${bad.genPpl.toFixed(1)}`);
    // Long texts are scored in windows of the judge's length and still give a finite number.
    const long = await score(judge, [{ text: Array(30).fill(text).join(' '), ids: [] }]);
    assert.ok(Number.isFinite(long.genPpl) && long.judgedTokens > 256);
  } finally {
    await judge.close();
  }
});
