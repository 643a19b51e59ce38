// The page's static route on a real uWebSockets.js app on loopback: what it serves, what it
// refuses, and that turning it off leaves `/` to the rest of the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import uWS from 'uWebSockets.js';
import { defaultChatDir, mountChatPage, type ChatPageOptions } from '../server/static.js';

async function serve(opts: ChatPageOptions): Promise<{ base: string; close(): void }> {
  const app = uWS.App();
  mountChatPage(app, opts);
  app.any('/*', (res) => {
    res.writeStatus('418 I\'m a teapot').end('rest of the server');
  });
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed'))));
  });
  return { base: `http://127.0.0.1:${uWS.us_socket_local_port(socket)}`, close: () => uWS.us_listen_socket_close(socket) };
}

test('serves the page at / and its modules under /chat/ with their types', async () => {
  const s = await serve({ enabled: true });
  try {
    const page = await fetch(`${s.base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/chat\/app\.js">/);
    for (const [file, type] of [['app.js', 'text/javascript'], ['canvas.js', 'text/javascript'], ['style.css', 'text/css']]) {
      const res = await fetch(`${s.base}/chat/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type') ?? '', new RegExp(`^${type}`), file);
      assert.ok((await res.text()).length > 100, file);
    }
  } finally {
    s.close();
  }
});

/** A raw request line, so that '..' reaches the server as sent (fetch would normalise it). */
async function rawStatus(base: string, path: string): Promise<number> {
  const url = new URL(base);
  const sock = connect(Number(url.port), url.hostname);
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  let head = '';
  for await (const chunk of sock) head += String(chunk);
  return Number(head.split(' ')[1]);
}

test('only files of the page folder are served; the rest is 404 in the OpenAI error shape', async () => {
  const s = await serve({ enabled: true });
  try {
    for (const path of ['/chat/nope.js', '/chat/tsconfig.json', '/chat/']) {
      const res = await fetch(`${s.base}${path}`);
      assert.equal(res.status, 404, path);
      const body = (await res.json()) as { error: { code: string; message: string; type: string } };
      assert.equal(body.error.code, 'not_found', path);
      assert.equal(body.error.type, 'invalid_request_error', path);
    }
    for (const path of ['/chat/../package.json', '/chat/%2e%2e/package.json', '/chat/..%2fpackage.json']) {
      assert.equal(await rawStatus(s.base, path), 404, path);
    }
  } finally {
    s.close();
  }
});

test('turned off, / and /chat/ are left to the rest of the server', async () => {
  const s = await serve({ enabled: false });
  try {
    assert.equal((await fetch(`${s.base}/`)).status, 418);
    assert.equal((await fetch(`${s.base}/chat/app.js`)).status, 418);
  } finally {
    s.close();
  }
});

test('another folder can be served, and one without index.html is refused at mount', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-'));
  try {
    assert.throws(() => mountChatPage(uWS.App(), { enabled: true, dir }), /no index\.html/);
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    assert.deepEqual(mountChatPage(uWS.App(), { enabled: true, dir }), ['index.html']);
    assert.ok(defaultChatDir().endsWith(join('server', 'public')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
