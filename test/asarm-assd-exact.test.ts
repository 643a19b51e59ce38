// ASSD samples the AS-ARM's exact serial any-order joint. On a synthetic two-stream network
// (test/fixtures/asarm: random weights, vocabulary 4) the joint over four positions to fill
// (256 outcomes) is enumerated through the graph itself; many ASSD runs are then compared with
// it by a chi-square test at the 0.1% level. k = 1 reproduces serial decoding token for token,
// and no run makes more network calls than it decodes tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Rng } from '../engine/rng.js';
import { distribution, sample, type Shaping } from '../engine/samplers/categorical.js';
import { AssdState, type AsarmRow } from '../engine/samplers/assd.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const GRAPH = join(REPO, 'test', 'fixtures', 'asarm', 'asarm.onnx');
const V = 4;
const PLACEHOLDER = 3;
// Position 2 is known context (an infilling prompt); the other four are decoded in an order
// that is neither left-to-right nor right-to-left.
const CONTEXT = [0, 0, 1, 0, 0];
const FILL = [3, 0, 4, 1];
// Each ASSD run is a row of one batched graph run per step, so N costs a few graph runs.
const N = 5000;
const PLAIN: Shaping = { temperature: 1, topK: 0, topP: 1 };

let session: ort.InferenceSession;

async function runRows(rows: readonly AsarmRow[]): Promise<Float32Array[]> {
  const B = rows.length;
  const L = rows[0]!.tokens.length;
  const tokens = new BigInt64Array(B * L);
  const ranks = new BigInt64Array(B * L);
  rows.forEach((r, b) => {
    for (let i = 0; i < L; i++) {
      tokens[b * L + i] = BigInt(r.tokens[i]!);
      ranks[b * L + i] = BigInt(r.ranks[i]!);
    }
  });
  const out = await session.run({
    tokens: new ort.Tensor('int64', tokens, [B, L]),
    ranks: new ort.Tensor('int64', ranks, [B, L]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(B * L).fill(1n), [B, L]),
  });
  const logits = out.logits!.data as Float32Array;
  return rows.map((r, b) => logits.slice((b * L + r.outputStart) * V, (b * L + r.outputStart + r.outputLength) * V));
}

/** The serial row for step t: context rank 0, decoded positions ranks 1..t, the rest t+1. */
function serialRow(decoded: readonly number[]): AsarmRow {
  const tokens = Int32Array.from(CONTEXT);
  const ranks = new Int32Array(CONTEXT.length);
  FILL.forEach((pos, i) => {
    tokens[pos] = i < decoded.length ? decoded[i]! : PLACEHOLDER;
    ranks[pos] = i < decoded.length ? i + 1 : decoded.length + 1;
  });
  const pos = FILL[decoded.length]!;
  return { tokens, ranks, outputStart: pos, outputLength: 1 };
}

/** p(outcome) for every outcome (index = sum of token * V^i over the decoding order). */
async function serialJoint(shaping: Shaping): Promise<number[]> {
  let prefixes: { tokens: number[]; p: number }[] = [{ tokens: [], p: 1 }];
  for (let t = 0; t < FILL.length; t++) {
    const logits = await runRows(prefixes.map((x) => serialRow(x.tokens)));
    prefixes = prefixes.flatMap((x, i) => {
      const q = distribution(logits[i]!, 0, V, shaping, null);
      return Array.from(q, (qv, v) => ({ tokens: [...x.tokens, v], p: x.p * qv }));
    });
  }
  const joint = new Array<number>(V ** FILL.length).fill(0);
  for (const x of prefixes) joint[index(x.tokens)] = x.p;
  return joint;
}

function index(tokensInOrder: readonly number[]): number {
  return tokensInOrder.reduce((acc, v, i) => acc + v * V ** i, 0);
}

/** Runs `n` ASSD decodes in lockstep (one batched graph run per step) and counts outcomes. */
async function sampleAssd(k: number, n: number, shaping: Shaping, seed: number): Promise<{ counts: number[]; maxNfe: number; tokensPerCall: number }> {
  const states = Array.from({ length: n }, (_, i) =>
    new AssdState(CONTEXT, FILL, { k, V, shaping, rng: new Rng(seed * 1_000_003 + i), placeholder: PLACEHOLDER }));
  let live = states;
  while (live.length > 0) {
    const rows = live.map((s) => s.nextRow());
    const logits = await runRows(rows);
    live.forEach((s, i) => s.consume(logits[i]!, rows[i]!));
    live = live.filter((s) => !s.finished);
  }
  const counts = new Array<number>(V ** FILL.length).fill(0);
  let maxNfe = 0;
  let calls = 0;
  for (const s of states) {
    counts[index(FILL.map((pos) => s.tokens[pos]!))]!++;
    for (let i = 0; i < CONTEXT.length; i++) if (!FILL.includes(i)) assert.equal(s.tokens[i], CONTEXT[i], 'context is kept');
    maxNfe = Math.max(maxNfe, s.nfe);
    calls += s.nfe;
  }
  return { counts, maxNfe, tokensPerCall: (n * FILL.length) / calls };
}

/**
 * Pearson chi-square over outcomes, pooling every outcome whose expected count is below 5
 * into one cell (the usual validity rule); a draw of a zero-probability outcome fails at once.
 */
function chiSquare(counts: number[], probs: number[]): { stat: number; df: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let stat = 0;
  let cells = 0;
  let pooledObs = 0;
  let pooledExp = 0;
  counts.forEach((c, i) => {
    const e = n * probs[i]!;
    if (probs[i] === 0) assert.equal(c, 0, `outcome ${i} has probability 0 but was drawn ${c} times`);
    else if (e < 5) { pooledObs += c; pooledExp += e; }
    else { stat += (c - e) ** 2 / e; cells++; }
  });
  if (pooledExp > 0) { stat += (pooledObs - pooledExp) ** 2 / pooledExp; cells++; }
  return { stat, df: cells - 1 };
}

/** Upper 0.1% point of chi-square(df), Wilson-Hilferty (within 1% of the table for df >= 10). */
function chi2Critical999(df: number): number {
  const z = 3.0902;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

test.before(async () => {
  session = await ort.InferenceSession.create(GRAPH);
});
test.after(async () => {
  await session.release();
});

test('the synthetic joint is a distribution and far from the independent draft', async () => {
  const joint = await serialJoint(PLAIN);
  assert.ok(Math.abs(joint.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  // Drafting all four at once from the context alone: the product of the draft marginals.
  const row = serialRow([]);
  const draftRanks = Int32Array.from(row.ranks);
  const [logits] = await runRows([{ tokens: row.tokens, ranks: draftRanks, outputStart: 0, outputLength: CONTEXT.length }]);
  const marg = FILL.map((pos) => distribution(logits!, pos * V, V, PLAIN, null));
  const indep = joint.map((_, o) => FILL.reduce((p, _pos, i) => p * marg[i]![Math.floor(o / V ** i) % V]!, 1));
  // The test has power: N draws from the independent product fail against the joint.
  const expected = indep.map((p) => Math.round(p * N));
  const { stat, df } = chiSquare(expected, joint);
  assert.ok(stat > 10 * chi2Critical999(df), `the independent product is too close to the joint to test (chi-square ${stat.toFixed(1)}, df ${df})`);
});

for (const [k, shaping, label] of [
  [2, PLAIN, 'k = 2'],
  [4, PLAIN, 'k = 4 (one round drafts every position)'],
  [8, { temperature: 0.7, topK: 0, topP: 1 }, 'k = 8, temperature 0.7'],
  [3, { temperature: 1, topK: 3, topP: 1 }, 'k = 3, top-k 3'],
] as const) {
  test(`ASSD follows the serial any-order joint, ${label} (N = ${N}, chi-square at 0.1%)`, async (t) => {
    const joint = await serialJoint(shaping);
    const { counts, maxNfe, tokensPerCall } = await sampleAssd(k, N, shaping, k * 7 + 1);
    const { stat, df } = chiSquare(counts, joint);
    const bound = chi2Critical999(df);
    t.diagnostic(`chi-square ${stat.toFixed(1)} < ${bound.toFixed(1)} (df ${df}); ${tokensPerCall.toFixed(2)} tokens per call; most calls in a run ${maxNfe}`);
    assert.ok(stat < bound, `chi-square ${stat.toFixed(1)} >= ${bound.toFixed(1)} (df ${df})`);
    assert.ok(maxNfe <= FILL.length, `a run made ${maxNfe} calls for ${FILL.length} tokens`);
    assert.ok(tokensPerCall > 1, `k = ${k} should beat one token per call, got ${tokensPerCall}`);
  });
}

test('k = 1 is serial decoding: same tokens for the same seed, one call per token', async () => {
  for (let seed = 1; seed <= 60; seed++) {
    const s = new AssdState(CONTEXT, FILL, { k: 1, V, shaping: PLAIN, rng: new Rng(seed), placeholder: PLACEHOLDER });
    while (!s.finished) {
      const row = s.nextRow();
      s.consume((await runRows([row]))[0]!, row);
    }
    // Serial reference, written independently of AssdState: one conditional per step.
    const rng = new Rng(seed);
    const decoded: number[] = [];
    for (let t = 0; t < FILL.length; t++) {
      const [logits] = await runRows([serialRow(decoded)]);
      decoded.push(sample(distribution(logits!, 0, V, PLAIN, null), rng.next()));
    }
    assert.deepEqual(FILL.map((pos) => s.tokens[pos]), decoded, `seed ${seed}`);
    assert.equal(s.nfe, FILL.length);
  }
});

test('greedy ASSD (temperature 0) returns the serial greedy decode for every k', async () => {
  const greedy: Shaping = { temperature: 0, topK: 0, topP: 1 };
  const decoded: number[] = [];
  for (let t = 0; t < FILL.length; t++) {
    const [logits] = await runRows([serialRow(decoded)]);
    decoded.push(sample(distribution(logits!, 0, V, greedy, null), 0.5));
  }
  for (const k of [1, 2, 3, 4, 16]) {
    const { counts } = await sampleAssd(k, 20, greedy, k);
    assert.equal(counts[index(decoded)], 20, `k = ${k}`);
  }
});
