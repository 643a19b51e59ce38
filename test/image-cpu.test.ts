// The CPU image for real: built with buildah from the edge bundle, configured by the final
// stage of deploy/Dockerfile.cpu, started from the committed image, serving the openai client.
// Needs buildah (scripts/setup-test.sh installs it); without it this file reports itself skipped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { buildBundle } from '../scripts/bundle.js';
import { buildah, buildCpuImage, hasBuildah, type Storage } from '../scripts/image-cpu.js';
import { launch, type Launched } from './helpers/launched.js';
import { freePort } from './helpers/spawned-server.js';

const skip = hasBuildah() ? false : 'buildah is not installed (apt-get install buildah; scripts/setup-test.sh does): the CPU image is not built here';
const TAG = 'localhost/dlm-serve-test:cpu';
let work = '';
let storage: Storage = {};
let ctr = '';
let server: Launched | undefined;
let buildSeconds = 0;

interface ImageConfig {
  User?: string;
  Env?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
  Healthcheck?: { Test?: string[]; Interval?: number };
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'dlm-image-'));
  storage = { root: join(work, 'storage'), runroot: join(work, 'run') };
  const t0 = performance.now();
  const { dir } = buildBundle(join(work, 'bundle'));
  buildCpuImage(dir, TAG, storage);
  buildSeconds = (performance.now() - t0) / 1000;
  ctr = buildah(storage, ['from', '--quiet', '--pull-never', TAG]);
  const port = await freePort();
  // chroot isolation shares the host's network: the server's loopback port is the test's.
  server = await launch('buildah', ['--storage-driver', 'vfs', '--root', storage.root!, '--runroot', storage.runroot!, 'run', '--isolation', 'chroot', '--env', `PORT=${port}`, ctr, '--', 'node', 'dist/server/main.js', '--host', '127.0.0.1', '--threads', '1'], { port, cwd: work });
});

after(async () => {
  if (skip) return;
  await server?.stop('SIGTERM');
  try {
    if (ctr) buildah(storage, ['rm', ctr], { quiet: true });
    buildah(storage, ['rmi', '--all', '--force'], { quiet: true });
  } catch {
    // the storage folder goes below anyway
  }
  rmSync(work, { recursive: true, force: true });
});

test('the CPU image is built from the bundle in a minute or two and configured as deploy/Dockerfile.cpu says', { skip }, (t) => {
  t.diagnostic(`bundle and image built in ${buildSeconds.toFixed(1)} s`);
  assert.ok(buildSeconds < 120, `image built in ${buildSeconds.toFixed(0)} s`);
  const config = (JSON.parse(buildah(storage, ['inspect', '--type', 'image', TAG])) as { Docker: { config: ImageConfig } }).Docker.config;
  assert.equal(config.User, '1000:1000');
  assert.equal(config.WorkingDir, '/app');
  assert.deepEqual(config.Cmd, ['node', 'dist/server/main.js']);
  assert.ok(config.Env?.includes('PORT=8080') && config.Env.includes('DLM_DEVICE=cpu') && config.Env.includes('NODE_ENV=production'), `Env ${config.Env?.join(' ')}`);
  assert.deepEqual(Object.keys(config.ExposedPorts ?? {}).map((p) => p.replace(/\/tcp$/, '')), ['8080']);
  assert.equal(config.Healthcheck?.Test?.[0], 'CMD');
  assert.equal(config.Healthcheck?.Test?.[1], 'node');
  assert.equal(config.Healthcheck?.Interval, 15e9);
});

test('a container of the image serves a completion to the openai client, as uid 1000, and its health check passes', { skip }, async () => {
  const client = new OpenAI({ baseURL: `${server!.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const model = (await client.models.list()).data[0]!.id;
  const r = await client.completions.create({ model, prompt: 'The king', max_tokens: 8, seed: 5, steps: 4, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.usage!.completion_tokens, 8);
  assert.ok(r.choices[0]!.text.trim().length > 0);
  // The image's own HEALTHCHECK command, run inside the container against the server.
  const config = (JSON.parse(buildah(storage, ['inspect', '--type', 'image', TAG])) as { Docker: { config: ImageConfig } }).Docker.config;
  const probe = config.Healthcheck!.Test!.slice(1);
  const port = new URL(server!.base).port;
  execFileSync('buildah', ['--storage-driver', 'vfs', '--root', storage.root!, '--runroot', storage.runroot!, 'run', '--isolation', 'chroot', '--env', `PORT=${port}`, ctr, '--', ...probe], { stdio: 'pipe' });
  const uid = execFileSync('buildah', ['--storage-driver', 'vfs', '--root', storage.root!, '--runroot', storage.runroot!, 'run', '--isolation', 'chroot', ctr, '--', 'node', '-p', 'process.getuid()'], { encoding: 'utf8' }).trim();
  assert.equal(uid.split('\n').at(-1), '1000');
});
