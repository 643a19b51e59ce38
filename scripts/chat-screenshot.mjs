// Takes docs/chat.png, docs/chat.md's picture of the chat page: the real server on the default
// model, a reply with the denoising canvas, replayed to a step where some positions are still
// masked. Run after `npm run build`: node scripts/chat-screenshot.mjs [OUT.png]
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

const out = process.argv[2] ?? 'docs/chat.png';
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn(process.execPath, ['dist/server/main.js', '--host', '127.0.0.1', '--port', String(port)], { stdio: 'ignore' });
const base = `http://127.0.0.1:${port}`;
try {
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 620 } });
  await page.goto(`${base}/`);
  await page.locator('[data-testid=status][data-state=open]').waitFor();
  await page.getByTestId('raw').check();
  await page.getByTestId('steps').fill('48');
  await page.getByTestId('max-tokens').fill('48');
  await page.getByTestId('prompt').fill('And the king said unto them,');
  await page.getByTestId('send').click();
  await page.locator('[data-testid=msg-assistant][data-state=done]').first().waitFor({ timeout: 60_000 });
  await page.getByTestId('stream-steps').check();
  await page.getByTestId('sampler').fill('ddpm');
  await page.getByTestId('prompt').fill('The ship sailed across the sea');
  await page.getByTestId('send').click();
  const reply = page.locator('[data-testid=msg-assistant]').nth(1);
  await reply.and(page.locator('[data-state=done]')).waitFor({ timeout: 60_000 });
  const canvas = reply.getByTestId('canvas');
  const steps = Number(await canvas.getAttribute('data-steps'));
  await canvas.locator('input[type=range]').fill(String(Math.floor(steps * 0.55)));
  await page.screenshot({ path: out });
  await browser.close();
  console.log(`wrote ${out}`);
} finally {
  server.kill('SIGKILL');
}
