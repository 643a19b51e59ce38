// The soak (npm run soak): a short real run against the spawned server, and the arithmetic it
// judges memory growth with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPids, rssMb, slopeMbPerMin, verdict } from '../loadtest/rss.js';
import { ROOT, TEST_MODEL_DIR } from './helpers/spawned-server.js';

const read = (p: string): string => readFileSync(p, 'utf8');

test('soak: a short mixed run against the real server answers or accounts for every request and exits 0', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'loadtest', 'soak.js'), '--minutes', '0.3', '--requests', '40', '--model', TEST_MODEL_DIR, '--sample-seconds', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, out);
  const m = /(\d+) requests \(json (\d+), sse (\d+), ws (\d+)\): (\d+) answered, (\d+) left by the client, (\d+) cancelled, (\d+) errors, (\d+) lost/.exec(out);
  assert.ok(m, out);
  const [started, json, sse, ws, answered, left, cancelled, errors, lost] = m.slice(1).map(Number) as number[];
  assert.ok(started! >= 16 && json! > 0 && sse! > 0 && ws! > 0, out);
  // The first 16 include one of each way of leaving: a dropped JSON request, a dropped stream, a cancel.
  assert.ok(left! >= 2 && cancelled! >= 1, out);
  assert.equal(errors, 0);
  assert.equal(lost, 0);
  assert.equal(answered! + left! + cancelled!, started, 'every request accounted for');
  assert.match(out, /server RSS [\d.]+\.\.[\d.]+ MB, slope -?[\d.]+ MB\/min; engine RSS [\d.]+\.\.[\d.]+ MB/);
  assert.match(out, /growth not judged/);
  assert.match(out, /0 sequences left running, 0 engine restarts, server exit code 0 after SIGTERM/);
});

test('soak arithmetic: least-squares slope, /proc readings, and the verdict', async () => {
  assert.equal(slopeMbPerMin([{ t: 0, mb: 100 }, { t: 1, mb: 102 }, { t: 2, mb: 104 }, { t: 3, mb: 106 }]), 2);
  assert.equal(slopeMbPerMin([{ t: 0, mb: 100 }, { t: 1, mb: 110 }, { t: 2, mb: 90 }, { t: 3, mb: 100 }]), -2);
  assert.equal(slopeMbPerMin([{ t: 1, mb: 5 }]), 0);

  const self = rssMb(process.pid, read);
  assert.ok(self !== null && self > 10 && self < 4096, `own RSS ${self} MB`);
  assert.equal(rssMb(2 ** 22 + 7, read), null, 'a pid that does not exist');
  const kid = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
  try {
    await once(kid, 'spawn');
    assert.ok(childPids(process.pid, read, readdirSync).includes(kid.pid!));
  } finally {
    kid.kill('SIGKILL');
  }

  const base = { lost: 0, errors: 0, leaked: 0, windowMinutes: 8, slopes: { server: 0.1, engine: -0.3 }, maxSlope: 1 };
  assert.deepEqual(verdict(base), { failures: [], growthJudged: true });
  assert.match(verdict({ ...base, lost: 1 }).failures.join(), /1 request\(s\) lost/);
  assert.match(verdict({ ...base, leaked: 2 }).failures.join(), /2 sequence\(s\) still live/);
  assert.match(verdict({ ...base, slopes: { server: 0.1, engine: 2.5 } }).failures.join(), /engine RSS grows 2\.50 MB\/min/);
  assert.deepEqual(verdict({ ...base, windowMinutes: 1, slopes: { server: 50, engine: 0 } }), { failures: [], growthJudged: false }, 'too short to judge');
});
