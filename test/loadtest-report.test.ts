// The load tests' arithmetic and picture: nearest-rank percentiles, per-second rates, and the
// SVG's geometry (log2 x axis, y from 0, a point per measurement).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, percentiles, summarize } from '../loadtest/report.js';
import { lineChart } from '../loadtest/svg-chart.js';

test('percentiles are nearest-rank over the samples', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  const p = percentiles(xs);
  assert.deepEqual([p.p50, p.p90, p.p99], [50, 90, 99]);
  assert.equal(p.mean, 50.5);
  assert.equal(percentile([7], 0.99), 7);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

test('summarize: rates per second from finished requests only', () => {
  const r = summarize('x', 4, 2, [
    { latencyMs: 100, firstBlockMs: 40, completionTokens: 10 },
    { latencyMs: 300, firstBlockMs: 60, completionTokens: 30 },
  ], 1);
  assert.equal(r.requestsPerSecond, 1);
  assert.equal(r.tokensPerSecond, 20);
  assert.equal(r.errors, 1);
  assert.equal(r.latencyMs.p99, 300);
  assert.equal(r.firstBlockMs.p50, 40);
});

test('line chart: points on a log2 x axis, y from zero, one polyline and legend entry per series', () => {
  const svg = lineChart({
    title: 't', xLabel: 'x', yLabel: 'y', width: 400, height: 300,
    series: [{ name: 'on', points: [[1, 10], [4, 40], [16, 80]] }, { name: 'off', points: [[1, 10], [4, 10], [16, 10]] }],
  });
  const polys = [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1]!.split(' ').map((p) => p.split(',').map(Number)));
  assert.equal(polys.length, 2);
  const [on, off] = polys as [number[][], number[][]];
  // log2: 1 -> 4 -> 16 are equally spaced.
  assert.ok(Math.abs((on[1]![0]! - on[0]![0]!) - (on[2]![0]! - on[1]![0]!)) < 0.2);
  // Higher throughput is drawn higher (smaller y); equal values at equal height.
  assert.ok(on[2]![1]! < on[1]![1]! && on[1]![1]! < on[0]![1]!);
  assert.equal(off[0]![1], off[2]![1]);
  assert.equal(on[0]![1], off[0]![1]);
  assert.ok(svg.includes('>on</text>') && svg.includes('>off</text>'));
});
