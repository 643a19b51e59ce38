// ONNX Runtime's optimised-graph cache (engine/optimized-cache.ts) on the real tiny model: the
// first start writes it (in the background, in ONNX Runtime's own format), the next maps it and
// computes the same logits, and a changed graph, a corrupt file or an unwritable folder never
// serve a wrong or failed session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openDeviceSession } from '../engine/device-session.js';
import { evictOld, optimizedPath, pendingWrites } from '../engine/optimized-cache.js';
import { parseConfig, type Config } from '../server/config.js';

const GRAPH = 'models/zoo/tiny-mdlm/denoiser.onnx';

async function logitsOf(session: ort.InferenceSession): Promise<Float32Array> {
  const n = 12;
  const tokens = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7) % 50));
  const out = await session.run({
    tokens: new ort.Tensor('int64', tokens, [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
  });
  return out.logits!.data as Float32Array;
}

/** The background writes a cache miss started. */
const written = (): Promise<unknown> => Promise.all([...pendingWrites]);

function close(a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst < 1e-4, `logits differ by ${worst}`);
}

test('the first session writes the optimised graph, the next reads it and computes the same logits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-ortcache-'));
  try {
    const plain = await logitsOf(await openDeviceSession(GRAPH, 'cpu', { threads: 1 }));
    const first = await openDeviceSession(GRAPH, 'cpu', { threads: 1, optimizedCacheDir: join(dir, 'c') });
    close(await logitsOf(first), plain);
    await written();
    const files = readdirSync(join(dir, 'c'));
    const cached = optimizedPath(GRAPH, join(dir, 'c'), 'all');
    assert.deepEqual(files, [cached.split('/').at(-1)]);
    // ORT format (a flatbuffer with the identifier ORTM at byte 4), not a protobuf under an .ort name.
    assert.equal(readFileSync(cached).subarray(4, 8).toString('latin1'), 'ORTM');
    const second = await openDeviceSession(GRAPH, 'cpu', { threads: 1, optimizedCacheDir: join(dir, 'c') });
    close(await logitsOf(second), plain);
    assert.deepEqual(readdirSync(join(dir, 'c')), files, 'the second start wrote another file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a changed graph gets a new cache file; a corrupt one is replaced; an unwritable folder is skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-ortcache-'));
  try {
    const graph = join(dir, 'denoiser.onnx');
    copyFileSync(GRAPH, graph);
    const cache = join(dir, 'c');
    const plain = await logitsOf(await openDeviceSession(graph, 'cpu', { threads: 1 }));
    await openDeviceSession(graph, 'cpu', { threads: 1, optimizedCacheDir: cache });
    await written();
    const before = optimizedPath(graph, cache, 'all');
    utimesSync(graph, new Date(), new Date(Date.now() + 5000));
    const after = optimizedPath(graph, cache, 'all');
    assert.notEqual(after, before, 'a newer graph must not read the old cache');
    writeFileSync(after, 'not a graph');
    close(await logitsOf(await openDeviceSession(graph, 'cpu', { threads: 1, optimizedCacheDir: cache })), plain);
    await written();
    assert.equal(readFileSync(after).subarray(4, 8).toString('latin1'), 'ORTM', 'the corrupt file was not rewritten');
    if (process.getuid?.() !== 0) {
      const ro = join(dir, 'ro');
      chmodSync(dir, 0o555);
      try {
        close(await logitsOf(await openDeviceSession(graph, 'cpu', { threads: 1, optimizedCacheDir: ro })), plain);
      } finally {
        chmodSync(dir, 0o755);
      }
    }
    // A cache folder under a regular file cannot be made, by root either.
    writeFileSync(join(dir, 'a-file'), '');
    close(await logitsOf(await openDeviceSession(graph, 'cpu', { threads: 1, optimizedCacheDir: join(dir, 'a-file', 'c') })), plain);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the cache folder keeps the graphs used last and drops temporary files a killed writer left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-ortcache-'));
  try {
    const at = (name: string, minutesAgo: number): void => {
      writeFileSync(join(dir, name), 'x');
      const t = new Date(Date.now() - minutesAgo * 60_000);
      utimesSync(join(dir, name), t, t);
    };
    for (let i = 0; i < 10; i++) at(`g${i}.ort`, i);
    at('g0.ort.123.tmp', 120);
    at('g1.ort.456.tmp', 1);
    evictOld(dir, 8);
    assert.deepEqual(readdirSync(dir).sort(), [...Array.from({ length: 8 }, (_, i) => `g${i}.ort`), 'g1.ort.456.tmp'].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the cache is in the user\'s cache folder unless --ort-cache / DLM_ORT_CACHE names another (the flag wins; off, 0 and empty mean off)', () => {
  const dirOf = (argv: string[], env: NodeJS.ProcessEnv): string | undefined => (parseConfig(argv, env) as Config).ortCacheDir;
  assert.equal(dirOf([], { HOME: '/home/u', XDG_CACHE_HOME: '/xdg' }), '/xdg/dlm-serve/ort');
  assert.equal(dirOf([], { HOME: '/home/u' }), '/home/u/.cache/dlm-serve/ort');
  assert.equal(dirOf([], { DLM_ORT_CACHE: '/var/cache/dlm' }), '/var/cache/dlm');
  assert.equal(dirOf(['--ort-cache', '/c'], { DLM_ORT_CACHE: 'off' }), '/c');
  assert.equal(dirOf(['--ort-cache', 'off'], { DLM_ORT_CACHE: '/c' }), undefined);
  assert.equal(dirOf([], { DLM_ORT_CACHE: '0' }), undefined);
  assert.equal(dirOf([], { DLM_ORT_CACHE: '' }), undefined);
});
