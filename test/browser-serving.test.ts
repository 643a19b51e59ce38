// What the real server (`npm start`) does for the chat page: serves it at / unless told not
// to, and gives `step` frames the canvas as text (`canvas_text`) that the page shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import WebSocket from 'ws';
import { SpawnedServer, TEST_MODEL_DIR, freePort } from './helpers/spawned-server.js';

let server: SpawnedServer;

before(async () => {
  server = new SpawnedServer(await freePort());
  await server.start();
});

after(async () => {
  await server?.stop();
});

test('npm start serves the chat page at /, and --no-chat turns it off', async () => {
  const page = await fetch(`${server.base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>dlm-serve chat<\/title>/);
  assert.equal((await fetch(`${server.base}/chat/app.js`)).status, 200);

  const off = new SpawnedServer(await freePort(), ['--no-chat']);
  await off.start();
  try {
    assert.equal((await fetch(`${off.base}/`)).status, 404);
    assert.equal((await fetch(`${off.base}/chat/app.js`)).status, 404);
    assert.equal((await fetch(`${off.base}/health`)).status, 200, 'the rest still serves');
  } finally {
    await off.stop();
  }
});

interface Frame {
  type: string;
  id?: string;
  canvas?: number[];
  canvas_text?: (string | null)[];
  finish_reason?: string;
  message?: string;
}

test('step frames carry canvas_text: the text of each position, null where masked', async () => {
  const manifest = JSON.parse(readFileSync(join(TEST_MODEL_DIR, 'model.json'), 'utf8')) as { special_tokens: { mask: number } };
  const maskId = manifest.special_tokens.mask;
  const tokenizer = Tokenizer.fromFile(join(TEST_MODEL_DIR, 'tokenizer.json'));
  const ws = new WebSocket(`${server.base.replace('http', 'ws')}/v1/ws`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const frames: Frame[] = [];
  const ended = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as Frame;
      frames.push(f);
      if (f.type === 'done' || f.type === 'error') resolve();
    });
  });
  ws.send(JSON.stringify({
    type: 'generate', id: 's1', prompt: 'Once upon a time',
    settings: { max_tokens: 16, steps: 8, stream_steps: true, ignore_eos: true, seed: 1 },
  }));
  await ended;
  ws.close();
  const last = frames[frames.length - 1];
  assert.equal(last?.type, 'done', `ended with ${JSON.stringify(last)}`);
  const steps = frames.filter((f) => f.type === 'step');
  assert.ok(steps.length >= 2, `expected several steps, got ${steps.length}`);
  let masked = 0;
  let shown = 0;
  for (const f of steps) {
    assert.ok(Array.isArray(f.canvas) && Array.isArray(f.canvas_text), 'a step frame has canvas and canvas_text');
    assert.equal(f.canvas_text!.length, f.canvas!.length);
    for (let i = 0; i < f.canvas!.length; i++) {
      const id: number = f.canvas![i]!;
      if (id === maskId) {
        assert.equal(f.canvas_text![i], null, `position ${i} is masked`);
        masked += 1;
      } else {
        assert.equal(f.canvas_text![i], await tokenizer.decode([id], true), `text of token ${id}`);
        shown += 1;
      }
    }
  }
  assert.ok(masked > 0 && shown > 0, `the steps showed ${masked} masked and ${shown} unmasked positions`);
});

test('without stream_steps there are no step frames', async () => {
  const ws = new WebSocket(`${server.base.replace('http', 'ws')}/v1/ws`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const types: string[] = [];
  await new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as Frame;
      types.push(f.type);
      if (f.type === 'done' || f.type === 'error') resolve();
    });
    ws.send(JSON.stringify({ type: 'generate', id: 'n1', prompt: 'Hello', settings: { max_tokens: 8 } }));
  });
  ws.close();
  assert.equal(types[types.length - 1], 'done');
  assert.ok(!types.includes('step'), types.join(','));
});
