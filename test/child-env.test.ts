// The engine process starts without NODE_EXTRA_CA_CERTS (engine/child-env.ts: Node 20 parses
// the whole bundle at boot, and the engine opens no TLS connection) and with the rest of the
// server's environment: the real engine on the tiny model, its environment read from /proc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startEngine } from '../engine/client.js';

test('the engine is forked with the server\'s environment less NODE_EXTRA_CA_CERTS', { skip: !existsSync('/proc/self/environ') && 'no /proc here' }, async () => {
  const saved = { ca: process.env.NODE_EXTRA_CA_CERTS, mark: process.env.DLM_CHILD_ENV_MARK };
  process.env.NODE_EXTRA_CA_CERTS = '/etc/ssl/certs/ca-certificates.crt';
  process.env.DLM_CHILD_ENV_MARK = 'kept';
  const engine = await startEngine({ modelDir: 'models/zoo/tiny-mdlm', device: 'cpu', threads: 1 });
  try {
    const env = readFileSync(`/proc/${engine.pid}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('DLM_CHILD_ENV_MARK=kept'), 'the rest of the environment is inherited');
    assert.ok(!env.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS=')), 'NODE_EXTRA_CA_CERTS reached the engine');
  } finally {
    await engine.close();
    for (const [k, v] of [['NODE_EXTRA_CA_CERTS', saved.ca], ['DLM_CHILD_ENV_MARK', saved.mark]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
