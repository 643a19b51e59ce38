// The chat page in a real browser (Debian's Chromium, headless, driven by playwright-core)
// against the real server (`node dist/server/main.js`) on loopback with the tiny model: a
// streamed reply, the denoising canvas, stop, a server error frame, and a server restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, SpawnedServer, freePort } from './helpers/spawned-server.js';

const artifacts = join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

let server: SpawnedServer;
let browser: Browser | null = null;
let page: Page;
/** A reply as long as the model's context comfortably allows... */
let longReply = '64';
/** ...denoised in many more steps than it has tokens (ddpm calls the network at every step): seconds, not milliseconds. */
const SLOW = { sampler: 'ddpm', steps: '512' };

/** Sets the controls of the sidebar; a value of '' leaves a setting to the model's default. */
async function settings(s: { sampler?: string; steps?: string; maxTokens?: string; canvas?: boolean; fixedLength?: boolean }): Promise<void> {
  await page.getByTestId('sampler').fill(s.sampler ?? '');
  await page.getByTestId('steps').fill(s.steps ?? '');
  await page.getByTestId('max-tokens').fill(s.maxTokens ?? '24');
  await page.getByTestId('stream-steps').setChecked(s.canvas ?? false);
  // A tiny model may say EOS at once; the tests that need a long reply ask for a fixed length.
  await page.getByTestId('ignore-eos').setChecked(s.fixedLength ?? false);
}

/**
 * Sends a message in a new chat (a tiny model's context holds little history) and returns
 * the locator of the assistant reply it starts.
 */
async function ask(text: string) {
  await page.getByTestId('send').waitFor({ state: 'visible' });
  await page.locator('#send:not([disabled])').waitFor();
  await page.locator('#new-chat').click();
  const before = await page.getByTestId('msg-assistant').count();
  await page.getByTestId('prompt').fill(text);
  await page.getByTestId('send').click();
  const reply = page.getByTestId('msg-assistant').nth(before);
  await reply.waitFor();
  return reply;
}

/** Waits until the reply has ended; an error shown in it fails the test with its text. */
async function finished(reply: ReturnType<Page['locator']>): Promise<void> {
  await reply.and(page.locator('[data-state=done], [data-state=error]')).waitFor({ timeout: 30_000 });
  if ((await reply.getAttribute('data-state')) === 'error') {
    assert.fail(`the reply ended in an error: ${await reply.getByTestId('error').textContent()}`);
  }
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = new SpawnedServer(await freePort());
  await server.start();
  const models = (await (await fetch(`${server.base}/v1/models`)).json()) as { data: { max_model_len?: number }[] };
  longReply = String(Math.max(16, Math.floor((models.data[0]?.max_model_len ?? 128) / 2)));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  // playwright-core gives each context a fresh profile directory (--user-data-dir) of its own.
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  page = await context.newPage();
  page.on('pageerror', (err) => {
    server.log += `\n[page error] ${err.message}`;
  });
  await page.goto(`${server.base}/`);
  await page.locator('[data-testid=status][data-state=open]').waitFor({ timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a message gets a reply streamed block by block, with its numbers underneath', async () => {
  // Longer than one denoising window (half the context), so the reply streams in at least two
  // pieces whatever order the sampler unmasks a window in: within one window the first position
  // may be decoded last, and then that window arrives whole.
  await settings({ maxTokens: String(Number(longReply) + 16), fixedLength: true });
  // Record every text the reply shows while it streams, to see it grow rather than appear.
  await page.evaluate(`(() => {
    window.seen = [];
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid=msg-assistant]:last-child .text')?.textContent ?? '';
      if (text !== '' && text !== window.seen[window.seen.length - 1]) window.seen.push(text);
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
  })()`);
  const reply = await ask('Once upon a time');
  await finished(reply);
  const text = await reply.locator('.text').textContent();
  assert.ok(text !== null && text.length > 0, 'the reply has text');
  const seen = (await page.evaluate('window.seen')) as string[];
  assert.ok(seen.length >= 2, `the reply arrived in ${seen.length} piece(s); expected it to stream`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].startsWith(seen[i - 1]), 'committed text only grows');
  const stats = await reply.getByTestId('stats').textContent();
  assert.match(stats ?? '', /\d+ tokens · [\d.]+ tok\/s · \d+ NFE .*first block \d+ ms/);
});

test('the canvas view shows masked positions being unmasked step by step', async () => {
  await settings({ maxTokens: '32', steps: '16', canvas: true, fixedLength: true });
  // Which cell states the live view ever painted.
  await page.evaluate(`(() => {
    window.states = {};
    new MutationObserver(() => {
      for (const cell of document.querySelectorAll('[data-testid=msg-assistant]:last-child .cell')) {
        const state = cell.classList[1] ?? '';
        window.states[state] = (window.states[state] ?? 0) + 1;
      }
    }).observe(document.getElementById('messages'), { subtree: true, childList: true });
  })()`);
  const reply = await ask('The canvas');
  await finished(reply);
  const canvas = reply.getByTestId('canvas');
  const steps = Number(await canvas.getAttribute('data-steps'));
  assert.ok(steps >= 2, `expected several steps, got ${steps}`);
  // Replay the first step with the slider: most of the canvas is still masked there.
  await canvas.locator('input[type=range]').fill('0');
  const masked = await canvas.locator('.cell.masked').count();
  const all = await canvas.locator('.cell').count();
  assert.ok(all > 0 && masked > 0, `first step: ${masked} of ${all} cells masked`);
  assert.match((await canvas.locator('.head span').textContent()) ?? '', /step \d+ \(1\/\d+\)/);
  const states = (await page.evaluate('window.states')) as Record<string, number>;
  assert.ok((states.new ?? 0) > 0, `tokens were shown as they were unmasked: ${JSON.stringify(states)}`);
  await page.screenshot({ path: join(artifacts, 'chat-canvas.png') });
});

test('stop cancels a long reply and keeps what had arrived', async () => {
  await settings({ ...SLOW, maxTokens: longReply, canvas: true, fixedLength: true });
  const reply = await ask('A long story');
  // Stop once the reply has visibly started (a step painted or a block committed).
  await reply.locator('.cell, .text:not(:empty)').first().waitFor({ timeout: 30_000 });
  await page.getByTestId('stop').click();
  await finished(reply);
  assert.equal(await reply.getAttribute('data-finish'), 'cancelled');
  assert.match((await reply.getByTestId('stats').textContent()) ?? '', /\(stopped\)/);
  await page.locator('#send:not([disabled])').waitFor();
});

test('a server error frame is shown to the user, and the chat goes on', async () => {
  await settings({ sampler: 'no-such-sampler' });
  const reply = await ask('This should fail');
  const error = reply.getByTestId('error');
  await error.waitFor({ timeout: 10_000 });
  assert.match((await error.textContent()) ?? '', /sampler/);
  await page.screenshot({ path: join(artifacts, 'chat-error.png') });
  await settings({});
  const ok = await ask('And this should work');
  await finished(ok);
});

test('a dropped connection is shown, retried, and the page works again when the server is back', async () => {
  await settings({ ...SLOW, maxTokens: longReply, fixedLength: true });
  const reply = await ask('Interrupted');
  await server.stop();
  // The reply in flight is marked as interrupted, and the status says we are retrying.
  await reply.and(page.locator('[data-state=error]')).waitFor({ timeout: 10_000 });
  assert.equal(await reply.getByTestId('error').getAttribute('data-code'), 'connection_lost');
  await page.locator('[data-testid=status][data-state=waiting]').waitFor({ timeout: 10_000 });
  assert.match((await page.getByTestId('status').textContent()) ?? '', /retrying in/);
  assert.equal(await page.getByTestId('banner').isVisible(), true);
  await page.screenshot({ path: join(artifacts, 'chat-reconnecting.png') });
  await server.start();
  await page.locator('[data-testid=status][data-state=open]').waitFor({ timeout: 20_000 });
  await settings({});
  const again = await ask('Back again');
  await finished(again);
  await page.screenshot({ path: join(artifacts, 'chat.png') });
});

test('a server with API keys: the page says it needs one, then chats with it', async () => {
  const locked = new SpawnedServer(await freePort(), ['--api-key', 'sesame']);
  await locked.start();
  const context = await (browser as Browser).newContext({ viewport: { width: 1100, height: 760 } });
  try {
    const p = await context.newPage();
    await p.goto(`${locked.base}/`);
    // The page itself is public; the API behind it is not.
    await p.getByTestId('banner').filter({ hasText: 'API key' }).waitFor({ timeout: 10_000 });
    await p.locator('[data-testid=status][data-state=waiting]').waitFor({ timeout: 10_000 });
    await p.getByTestId('api-key').fill('sesame');
    await p.getByTestId('api-key').press('Enter');
    await p.getByTestId('api-key').blur();
    await p.locator('[data-testid=status][data-state=open]').waitFor({ timeout: 10_000 });
    assert.equal(await p.getByTestId('model').inputValue() !== '', true, 'the model list loaded with the key');
    await p.getByTestId('max-tokens').fill('8');
    await p.getByTestId('prompt').fill('Open sesame');
    await p.getByTestId('send').click();
    const reply = p.getByTestId('msg-assistant').first();
    await reply.and(p.locator('[data-state=done], [data-state=error]')).waitFor({ timeout: 30_000 });
    assert.equal(await reply.getAttribute('data-state'), 'done', (await reply.textContent()) ?? '');
  } finally {
    await context.close();
    await locked.stop();
  }
});
