// `npm start -- --device cuda|webgpu` end to end: the real server process with the real engine
// and the default model. A device that cannot start must stop the server with a message naming
// what is missing and a non-zero exit; a usable one serves. Skipped only where the device is
// present (the failure cases) or not set up (lavapipe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeSharedLibrary } from '../engine/device-check.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/server/main.js');
const ICD = join(ROOT, '.work/lavapipe/lvp_icd.json');
const LAVAPIPE_ENV = {
  VK_DRIVER_FILES: ICD,
  LD_LIBRARY_PATH: [join(ROOT, '.work/lavapipe/root/usr/lib/x86_64-linux-gnu'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Started {
  exit: Promise<{ code: number | null; output: string }>;
  kill(): void;
  output(): string;
}

function startServer(args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<{ code: number | null; output: string }>((resolve) => child.on('close', (code) => resolve({ code, output })));
  return { exit, kill: () => child.kill('SIGTERM'), output: () => output };
}

async function exitWithin(s: Started, ms: number): Promise<{ code: number | null; output: string }> {
  const timer = setTimeout(() => s.kill(), ms);
  const r = await s.exit;
  clearTimeout(timer);
  return r;
}

test('npm start -- --device cuda without a usable GPU exits non-zero, naming what is missing', { skip: existsSync('/dev/nvidiactl') && 'an NVIDIA GPU is present' }, async () => {
  const s = startServer(['--device', 'cuda', '--port', String(await freePort())]);
  const { code, output } = await exitWithin(s, 60_000);
  assert.notEqual(code, 0, output);
  assert.notEqual(code, null, `the server kept running on --device cuda: ${output}`);
  assert.match(output, /--device cuda is not usable here: /);
  assert.match(output, /CUDA provider is not installed|CUDA 13 libraries are missing|libcuda\.so\.1|no NVIDIA GPU is visible/);
});

const vulkanHere = process.platform === 'linux' && probeSharedLibrary('libvulkan.so.1').loaded;
test('npm start -- --device webgpu without Vulkan exits non-zero, naming the loader', { skip: vulkanHere && 'a Vulkan loader is installed here' }, async () => {
  const s = startServer(['--device', 'webgpu', '--port', String(await freePort())]);
  const { code, output } = await exitWithin(s, 60_000);
  assert.notEqual(code, 0, output);
  assert.notEqual(code, null, `the server kept running on --device webgpu: ${output}`);
  assert.match(output, /--device webgpu is not usable here: .*Vulkan/);
});

test('npm start -- --device webgpu on lavapipe serves a completion', { skip: !existsSync(ICD) && 'lavapipe is not set up (bash scripts/setup-lavapipe.sh): not run' }, async () => {
  const port = await freePort();
  const s = startServer(['--device', 'webgpu', '--port', String(port)], LAVAPIPE_ENV);
  try {
    let healthy = false;
    for (let i = 0; i < 120 && !healthy; i++) {
      healthy = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (!healthy) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(healthy, `no /health within 30 s: ${s.output()}`);
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, seed: 1 }),
    });
    const body = (await r.json()) as { choices?: Array<{ text: string }>; usage?: { completion_tokens: number } };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.choices?.length, 1);
    assert.ok((body.usage?.completion_tokens ?? 0) > 0);
  } finally {
    s.kill();
    await s.exit;
  }
});
