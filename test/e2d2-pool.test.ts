// E2D2's encoded blocks in the shared pool, on real graphs through the real scheduler: a prompt
// seen before reuses its blocks (cached_tokens, fewer calls) and gives the same tokens as
// encoding it afresh; a shared first block is reused under a different second one; every
// reference goes back when requests end, are cancelled, or the budget is small.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectRunner } from '../engine/direct-runner.js';
import { makeE2d2Family } from '../engine/families/e2d2-family.js';
import type { Family } from '../engine/families/family.js';
import type { GenerationParams } from '../engine/protocol.js';
import type { Sequence } from '../engine/sequence.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = join(REPO, 'models', 'zoo', 'e2d2-brown');
let shipped: DirectRunner;
// A random network reads its context (the shipped tiny one barely does), so reused blocks that
// were wrong would change its tokens.
let random: DirectRunner;

before(async () => {
  shipped = await DirectRunner.open(MODEL, 1);
  const dir = mkdtempSync(join(tmpdir(), 'dlm-e2d2-pool-'));
  const py = spawnSync('/usr/bin/python3', ['-m', 'dlm.e2d2_parity', '--model-dir', dir, '--tokenizer', join(MODEL, 'tokenizer.json')],
    { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(py.status, 0, `dlm.e2d2_parity --model-dir failed: ${py.stderr}`);
  random = await DirectRunner.open(dir, 1);
});
after(async () => { await shipped.close(); await random.close(); });

const base: GenerationParams = {
  maxTokens: 12, sampler: 'confidence_topk', steps: 4, temperature: 1, topP: 1, topK: 0, seed: 3,
  ignoreEos: true, stopTokenIds: [], streamSteps: false, blockSize: 4,
};
// Three whole blocks of 4 and two lead tokens.
const PROMPT = [11, 12, 13, 14, 21, 22, 23, 24, 31, 32, 33, 34, 41, 42];

test('the same prompt twice: the second reuses its blocks, calls the encoder less and gives the same tokens', async () => {
  for (const runner of [shipped, random]) {
    const fam = makeE2d2Family();
    const pool = runner.cacheOf(fam)!;
    const [first] = await runner.run(fam, [PROMPT], base);
    assert.equal(first!.usage.cachedTokens, 0);
    assert.ok(pool.stats().blocks >= 3, `${pool.stats().blocks} blocks pooled`);
    const [second] = await runner.run(fam, [PROMPT], base);
    assert.equal(second!.usage.cachedTokens, 12, runner.dir.manifest.name);
    assert.equal(second!.usage.nfe, first!.usage.nfe - 1, 'the prefill call is skipped');
    assert.deepEqual(second!.tokens, first!.tokens, runner.dir.manifest.name);
    assert.equal(pool.stats().references, 0);
  }
});

test('a shared first block is reused and the rest encoded against it: same tokens as from an empty pool', async () => {
  const other = [11, 12, 13, 14, 51, 52, 53, 54, 61, 62];
  for (const temperature of [0, 1]) {
    const p = { ...base, temperature, maxTokens: 16 };
    const fresh = await random.run(makeE2d2Family(), [other], p);
    const fam = makeE2d2Family();
    await random.run(fam, [PROMPT], p);
    const reused = await random.run(fam, [other], p);
    assert.equal(reused[0]!.usage.cachedTokens, 4);
    assert.equal(fresh[0]!.usage.cachedTokens, 0);
    assert.deepEqual(reused[0]!.tokens, fresh[0]!.tokens, `temperature ${temperature}`);
    assert.equal(random.cacheOf(fam)!.stats().references, 0);
  }
});

test('identical rows in one batch share their blocks; generated blocks are pooled too', async () => {
  const fam = makeE2d2Family();
  const pool = shipped.cacheOf(fam)!;
  const rs = await shipped.run(fam, [PROMPT, PROMPT, PROMPT], base);
  assert.deepEqual(rs[1]!.tokens, rs[0]!.tokens);
  assert.deepEqual(rs[2]!.tokens, rs[0]!.tokens);
  // 3 prompt blocks once, plus the generated blocks of one continuation (all rows made the same).
  assert.equal(pool.stats().blocks, 3 + Math.ceil((2 + base.maxTokens) / 4) - 1);
  assert.equal(pool.stats().references, 0);
  // A prompt that continues with what was generated finds those blocks too.
  const longer = [...PROMPT, ...rs[0]!.tokens.slice(0, 6)];
  const [x] = await shipped.run(fam, [longer], base);
  assert.equal(x!.usage.cachedTokens, 20);
});

/** Runs the prompts, cancelling each right after its first streamed block (during its next call). */
async function cancelAfterFirstBlock(fam: Family, prompts: number[][], p: GenerationParams) {
  const seqs: Sequence[] = [];
  const tracking: Family = { ...fam, create: (...a) => { const s = fam.create(...a); seqs.push(s); return s; } };
  return shipped.run(tracking, prompts, p, { cache: shipped.cacheOf(fam), onCommit: (i) => { setImmediate(() => seqs[i]!.stop('cancelled')); } });
}

test('references return to zero after a cancel, with pooled and own blocks held', async () => {
  const fam = makeE2d2Family();
  const pool = shipped.cacheOf(fam)!;
  await shipped.run(fam, [PROMPT], base);
  const rs = await cancelAfterFirstBlock(fam, [PROMPT, [70, 71, 72, 73, 74, 75]], { ...base, maxTokens: 40 });
  for (const r of rs) assert.equal(r.finishReason, 'cancelled');
  assert.ok(rs[0]!.tokens.length < 40);
  assert.equal(rs[0]!.usage.cachedTokens, 12);
  assert.equal(pool.stats().references, 0);
});

test('a small budget evicts unreferenced blocks first, stays within bytes and still finishes', async () => {
  const fam = makeE2d2Family();
  const probe = shipped.newCache(fam)!;
  await shipped.run(fam, [PROMPT], base, { cache: probe });
  const p0 = probe.stats();
  const perBlock = p0.bytes / p0.blocks;
  // Room for 6 blocks: the window (model length / 4) does not fit, so sequences give up their oldest.
  const pool = shipped.newCache(fam, 6 * perBlock)!;
  let worst = 0;
  const rs = await shipped.run(fam, [PROMPT, [90, 91, 92, 93, 94]], { ...base, maxTokens: 40 }, { cache: pool, onCommit: () => { worst = Math.max(worst, pool.stats().bytes); } });
  for (const r of rs) assert.equal(r.tokens.length, 40);
  const st = pool.stats();
  assert.ok(worst <= 6 * perBlock && st.bytes <= st.budgetBytes);
  assert.equal(st.budgetBytes, 6 * perBlock);
  assert.ok(st.evictions > 0);
  assert.equal(st.references, 0);
});
