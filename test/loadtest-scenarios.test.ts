// `npm run loadtest` end to end on the tiny model: every scenario runs briefly at two
// concurrencies against a real server the CLI starts on loopback, and its JSON and SVG hold
// what docs/benchmarks.md's load-test numbers come from.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScenarioResult } from '../loadtest/report.js';
import { SCENARIOS } from '../loadtest/main.js';

const CONCURRENCY = [1, 3];
let out: string;
let json: { config: Record<string, unknown>; results: ScenarioResult[] };
let svg: string;

before(() => {
  out = mkdtempSync(join(tmpdir(), 'dlm-loadtest-'));
  const r = spawnSync(process.execPath, [
    'dist/loadtest/main.js', '--model', 'models/zoo/tiny-mdlm', '--threads', '1', '--concurrency', CONCURRENCY.join(','),
    '--seconds', '0.6', '--max-tokens', '8', '--steps', '4', '--per-socket', '2', '--out', out,
  ], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /req\/s\s+tokens\/s/);
  json = JSON.parse(readFileSync(join(out, 'loadtest.json'), 'utf8')) as typeof json;
  svg = readFileSync(join(out, 'throughput.svg'), 'utf8');
});

for (const scenario of SCENARIOS) {
  test(`loadtest ${scenario}: requests/s, tokens/s, latency and first-block percentiles at each concurrency`, () => {
    const rows = json.results.filter((r) => r.scenario === scenario);
    assert.deepEqual(rows.map((r) => r.concurrency), CONCURRENCY);
    for (const r of rows) {
      const at = `${scenario} x${r.concurrency}`;
      assert.ok(r.seconds >= 0.6 && r.seconds < 30, `${at}: seconds ${r.seconds}`);
      assert.ok(r.requests >= 1, `${at}: ${r.requests} requests finished`);
      assert.equal(r.errors, 0, at);
      assert.ok(Math.abs(r.requestsPerSecond - r.requests / r.seconds) < 1e-9, at);
      assert.ok(r.tokensPerSecond > 0, at);
      for (const p of [r.latencyMs, r.firstBlockMs]) {
        assert.ok(p.p50 > 0 && p.p50 <= p.p90 && p.p90 <= p.p99, `${at}: ${JSON.stringify(p)}`);
      }
      assert.ok(r.firstBlockMs.p50 <= r.latencyMs.p99, `${at}: the first block comes before the end`);
      assert.equal(typeof r.cachedPromptTokens, 'number', at);
    }
  });
}

test('loadtest JSON says how it ran; the SVG draws one line per scenario over the concurrencies', () => {
  assert.equal(json.config.model, 'tiny-mdlm');
  assert.deepEqual(json.config.concurrency, CONCURRENCY);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<polyline /g) ?? []).length, SCENARIOS.length);
  for (const s of SCENARIOS) assert.ok(svg.includes(`>${s}</text>`), `legend names ${s}`);
});

test('loadtest --requests: every point runs exactly that many requests and times them all', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-loadtest-n-'));
  const r = spawnSync(process.execPath, [
    'dist/loadtest/main.js', '--model', 'models/zoo/tiny-mdlm', '--threads', '1', '--scenarios', 'sse,ws', '--concurrency', '2',
    '--requests', '5', '--max-tokens', '8', '--steps', '4', '--out', dir,
  ], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const { results } = JSON.parse(readFileSync(join(dir, 'loadtest.json'), 'utf8')) as { results: ScenarioResult[] };
  assert.deepEqual(results.map((x) => [x.scenario, x.requests, x.errors]), [['sse', 5, 0], ['ws', 5, 0]]);
  for (const x of results) {
    assert.ok(Math.abs(x.tokensPerSecond * x.seconds - 5 * 8) < 1e-6, `${x.scenario}: all 40 tokens counted`);
    assert.ok(x.latencyMs.p99 <= x.seconds * 1000 + 1, `${x.scenario}: timed to the last answer`);
  }
});
