// `npm start` as a user runs it: the compiled entry point in its own process, configured by
// flags and env, logging JSON lines, stopping cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_MODEL_DIR } from './helpers/served.js';

const MAIN = fileURLToPath(new URL('../server/main.js', import.meta.url));

test('main: env configures it, the first log line says where it listens, SIGTERM stops it', async () => {
  const child = spawn(process.execPath, [MAIN, '--host', '127.0.0.1', '--threads', '1'], {
    env: { ...process.env, PORT: '0', DLM_MODEL: TEST_MODEL_DIR, DLM_API_KEYS: 'secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const lines = createInterface({ input: child.stdout! });
    let port = 0;
    for await (const line of lines) {
      const entry = JSON.parse(line) as { level: number; port?: number; model?: string; auth?: boolean };
      assert.equal(typeof entry.level, 'number');
      if (entry.port !== undefined) {
        port = entry.port;
        assert.equal(entry.auth, true);
        break;
      }
    }
    assert.ok(port > 0);
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.equal((await fetch(`${base}/v1/models`)).status, 401);
    const r = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { Authorization: 'Bearer secret' },
      body: JSON.stringify({ prompt: 'Hi', max_tokens: 4, steps: 4 }),
    });
    assert.equal(r.status, 200);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('main: a bad flag exits 2 with the usage; a missing model exits 1 naming it', async () => {
  const run = async (args: string[]): Promise<{ code: number | null; err: string }> => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, err };
  };
  const bad = await run(['--device', 'tpu']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--device: expected cpu, cuda or webgpu/);
  assert.match(bad.err, /Usage: npm start/);
  const missing = await run(['--model', '/nonexistent/model', '--port', '0']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no model\.json in \/nonexistent\/model/);
});
