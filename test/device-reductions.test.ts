// Logits reduced inside the graph (scripts/add-logit-reductions.py): the per-position argmax and
// its log-probability, fetched instead of the full logits. Checked against the same quantities
// computed here from the full logits of the same run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { addLogitReductions, buildDeviceGraph, DEVICE_GRAPH_VOCAB as V } from './fixtures/device-graph.js';

const graph = buildDeviceGraph();

async function check(excluded: number[]): Promise<void> {
  const session = await ort.InferenceSession.create(addLogitReductions(graph, excluded));
  const [B, L] = [3, 7];
  const feeds = { tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * L }, (_, i) => BigInt((i * 11 + 3) % V)), [B, L]) };
  const full = (await session.run(feeds, ['logits'])).logits!.data as Float32Array;
  const reduced = await session.run(feeds, ['logits_argmax', 'logits_max_logprob']);
  assert.deepEqual(Object.keys(reduced).sort(), ['logits_argmax', 'logits_max_logprob']);
  assert.deepEqual(reduced.logits_argmax!.dims, [B, L]);
  const argmax = reduced.logits_argmax!.data as BigInt64Array;
  const maxLogprob = reduced.logits_max_logprob!.data as Float32Array;
  for (let p = 0; p < B * L; p++) {
    let best = -Infinity;
    let at = -1;
    for (let v = 0; v < V; v++) if (!excluded.includes(v) && full[p * V + v]! > best) [best, at] = [full[p * V + v]!, v];
    let z = 0;
    for (let v = 0; v < V; v++) if (!excluded.includes(v)) z += Math.exp(full[p * V + v]! - best);
    assert.equal(Number(argmax[p]), at, `position ${p}`);
    assert.ok(Math.abs(maxLogprob[p]! + Math.log(z)) < 1e-5, `position ${p}: ${maxLogprob[p]} vs ${-Math.log(z)}`);
  }
  await session.release();
}

test('argmax and its log-probability match the full logits', () => check([]));

test('excluded ids (the [MASK] of SUBS) are never the argmax and leave the softmax', async () => {
  // Exclude whatever the plain argmax picks most, so the exclusion must change answers.
  const session = await ort.InferenceSession.create(addLogitReductions(graph));
  const feeds = { tokens: new ort.Tensor('int64', BigInt64Array.from({ length: 21 }, (_, i) => BigInt((i * 11 + 3) % V)), [3, 7]) };
  const picks = Array.from((await session.run(feeds, ['logits_argmax'])).logits_argmax!.data as BigInt64Array, Number);
  await session.release();
  const common = [...new Set(picks)].sort((a, b) => picks.filter((x) => x === b).length - picks.filter((x) => x === a).length)[0]!;
  await check([common, V - 1]);
});

test('device-probe fetching only the reductions copies 12 bytes per position instead of 4 x vocab', () => {
  const probe = fileURLToPath(new URL('../loadtest/device-probe.js', import.meta.url));
  const reducedGraph = addLogitReductions(graph);
  const run = (extra: string[]) => {
    const r = spawnSync(process.execPath, [probe, '--device', 'cpu', '--model', reducedGraph, '--batch', '2', '--length', '16', '--runs', '2', '--json', ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { results: Array<{ batches: Array<{ outputBytes: number }> }> }).results[0]!.batches[0]!.outputBytes;
  };
  assert.equal(run(['--outputs', 'logits_argmax,logits_max_logprob']), 2 * 16 * (8 + 4));
  assert.equal(run(['--outputs', 'logits']), 2 * 16 * V * 4);
});
