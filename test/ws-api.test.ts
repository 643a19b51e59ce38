// The WebSocket API (/v1/ws) with a real `ws` client, JSON and msgpack, against the real engine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { scrape, serve, waitIdle, type Served } from './helpers/served.js';

let s: Served;
before(async () => {
  s = await serve();
});
after(() => s.close());

type Frame = { type: string; id: string | null; [k: string]: unknown };
const packr = new Packr({ useRecords: false });

/** A client that decodes frames of either kind and lets a test await the frames it expects. */
class Client {
  readonly frames: Frame[] = [];
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const f = (isBinary ? packr.unpack(data) : JSON.parse(data.toString('utf8'))) as Frame;
      this.frames.push(f);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(f)) return true;
        w.resolve(f);
        return false;
      });
    });
  }
  static async open(protocol?: string): Promise<Client> {
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/v1/ws`, protocol ? [protocol] : []);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Client(ws);
  }
  send(msg: unknown): void {
    this.ws.send(this.ws.protocol === 'msgpack' ? packr.pack(msg) : JSON.stringify(msg));
  }
  next(pred: (f: Frame) => boolean, ms = 10000): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching frame in ${ms} ms; got ${JSON.stringify(this.frames.slice(-3))}`)), ms);
      this.waiters.push({ pred, resolve: (f) => { clearTimeout(t); resolve(f); } });
    });
  }
  done(id: string): Promise<Frame> {
    return this.next((f) => f.type === 'done' && f.id === id);
  }
  error(id: string | null, code: string): Promise<Frame> {
    return this.next((f) => f.type === 'error' && f.id === id && f.code === code);
  }
  text(id: string): string {
    return this.frames.filter((f) => f.type === 'delta' && f.id === id).map((f) => f.text as string).join('');
  }
  close(): void {
    this.ws.close();
  }
}

const settings = { max_tokens: 16, steps: 8, ignore_eos: true, seed: 9 };

for (const protocol of [undefined, 'msgpack'] as const) {
  test(`generate over ${protocol ?? 'JSON'}: deltas carry text and token ids, then done with usage`, async () => {
    const c = await Client.open(protocol);
    assert.equal(c.ws.protocol, protocol ?? '');
    c.send({ type: 'generate', id: 'g1', prompt: 'Hello', settings });
    const done = await c.done('g1');
    assert.equal(done.finish_reason, 'length');
    const usage = done.usage as { completion_tokens: number; nfe: number; prompt_tokens_details: { cached_tokens: number } };
    assert.equal(usage.completion_tokens, 16);
    assert.ok(usage.nfe >= 1);
    const deltas = c.frames.filter((f) => f.type === 'delta');
    assert.equal(deltas.flatMap((f) => f.tokens as number[]).length, 16);
    // Same seed over HTTP gives the same text.
    const http = await fetch(`${s.base}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: s.engine.model.name, prompt: 'Hello', ...settings }),
    }).then((r) => r.json() as Promise<{ choices: { text: string }[] }>);
    assert.equal(c.text('g1'), http.choices[0]!.text);
    c.close();
  });
}

test('many generations on one socket, chat messages too, each finishes under its own id', async () => {
  const c = await Client.open();
  const ids = ['a', 'b', 'c', 'd'];
  for (const id of ids) c.send({ type: 'generate', id, prompt: `Prompt ${id}`, settings: { ...settings, seed: id.charCodeAt(0) } });
  c.send({ type: 'generate', id: 'chat', messages: [{ role: 'user', content: 'Hi' }], settings: { max_tokens: 8 } });
  const dones = await Promise.all([...ids, 'chat'].map((id) => c.done(id)));
  for (const d of dones.slice(0, 4)) assert.equal(d.finish_reason, 'length');
  assert.ok(['stop', 'length'].includes(dones[4]!.finish_reason as string));
  c.close();
});

test('stream_steps sends step canvases before the deltas they lead to', async () => {
  const c = await Client.open();
  c.send({ type: 'generate', id: 's', prompt: 'Hi', settings: { ...settings, stream_steps: true } });
  await c.done('s');
  const steps = c.frames.filter((f) => f.type === 'step');
  assert.ok(steps.length >= 1, 'at least one step frame');
  for (const f of steps) {
    assert.ok(Array.isArray(f.canvas));
    assert.equal(typeof f.step, 'number');
    assert.equal(typeof f.offset, 'number');
  }
  c.close();
});

test('cancel stops a generation: done with finish_reason cancelled, nothing left live', async () => {
  const c = await Client.open();
  c.send({ type: 'generate', id: 'long', prompt: 'Go', settings: { max_tokens: 48, steps: 48, ignore_eos: true } });
  c.send({ type: 'cancel', id: 'long' });
  const done = await c.done('long');
  assert.equal(done.finish_reason, 'cancelled');
  assert.ok((done.usage as { completion_tokens: number }).completion_tokens < 48);
  await waitIdle(s.base);
  c.close();
});

test('a client that disconnects mid-generation leaves no live sequence', async () => {
  const c = await Client.open();
  c.send({ type: 'generate', id: 'x', prompt: 'Go', settings: { max_tokens: 48, steps: 48, ignore_eos: true } });
  c.send({ type: 'generate', id: 'y', prompt: 'Go on', settings: { max_tokens: 48, steps: 48, ignore_eos: true } });
  await c.next((f) => f.type === 'delta' || f.type === 'done');
  c.ws.terminate();
  await waitIdle(s.base);
});

test('bad messages get an error frame naming the field, and the socket keeps working', async () => {
  const c = await Client.open();
  c.ws.send('{not json');
  await c.error(null, 'invalid_message');
  c.send({ type: 'dance', id: 'q' });
  assert.equal((await c.error('q', 'unknown_type')).param, 'type');
  c.send({ type: 'generate', id: 'bad1', prompt: 'x', settings: { steps: -3 } });
  assert.equal((await c.error('bad1', 'invalid_value')).param, 'settings.steps');
  c.send({ type: 'generate', id: 'bad2', prompt: 'x', settings: { steps: 10_000_000 } });
  assert.equal((await c.error('bad2', 'invalid_value')).param, 'settings.steps');
  c.send({ type: 'generate', id: 'bad3', prompt: 'x', settings: { top_p: 0 } });
  assert.equal((await c.error('bad3', 'invalid_value')).param, 'settings.top_p');
  c.send({ type: 'generate', id: 'bad4', prompt: 'x', settings: { sampler: 'nope' } });
  assert.equal((await c.error('bad4', 'invalid_value')).param, 'settings.sampler');
  c.send({ type: 'generate', id: 'bad5', settings: {} });
  assert.equal((await c.error('bad5', 'invalid_value')).param, 'prompt');
  c.send({ type: 'cancel', id: 'ghost' });
  assert.equal((await c.error('ghost', 'unknown_id')).param, 'id');
  c.ws.send('x'.repeat((1 << 20) + 10));
  await c.error(null, 'frame_too_large');
  c.send({ type: 'generate', id: 'dup', prompt: 'x', settings: { max_tokens: 32, steps: 32, ignore_eos: true } });
  c.send({ type: 'generate', id: 'dup', prompt: 'y', settings });
  assert.equal((await c.error('dup', 'duplicate_id')).param, 'id');
  assert.equal((await c.done('dup')).finish_reason, 'length');
  c.send({ type: 'generate', id: 'ok', prompt: 'fine', settings });
  assert.equal((await c.done('ok')).finish_reason, 'length');
  c.close();
});

test('an unknown subprotocol is refused at the upgrade', async () => {
  const ws = new WebSocket(`${s.base.replace('http', 'ws')}/v1/ws`, ['xml']);
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  assert.equal(status, 400);
});

test('a reader that stops reading is cut off at the queue bound, and other clients are not slowed', async () => {
  // Small bounds so the test is quick; the slow client floods the server with bad messages,
  // each answered by a ~1 KB error frame that it never reads.
  const tight = await serve({ engine: s.engine, limits: { wsSoftBackpressure: 16 << 10, maxPendingBytes: 256 << 10 } });
  try {
    const url = `${tight.base.replace('http', 'ws')}/v1/ws`;
    const slow = new WebSocket(url);
    await new Promise((r) => slow.once('open', r));
    const closed = new Promise<number>((r) => slow.once('close', (code) => r(code)));
    slow.pause();
    const junk = JSON.stringify({ type: 'x'.repeat(1000) });
    for (let i = 0; i < 20_000 && slow.readyState === WebSocket.OPEN; i++) slow.send(junk);

    // Meanwhile a well-behaved client on the same server is served normally.
    const fast = new WebSocket(url);
    await new Promise((r) => fast.once('open', r));
    const t0 = Date.now();
    const done = new Promise<{ finish_reason: string }>((resolve) => {
      fast.on('message', (data: Buffer) => {
        const f = JSON.parse(data.toString('utf8')) as { type: string; finish_reason: string };
        if (f.type === 'done') resolve(f);
      });
    });
    fast.send(JSON.stringify({ type: 'generate', id: 'f', prompt: 'Hi', settings }));
    assert.equal((await done).finish_reason, 'length');
    const fastMs = Date.now() - t0;
    fast.close();

    slow.resume();
    assert.equal(await closed, 1008);
    assert.ok(fastMs < 5000, `the fast client took ${fastMs} ms`);
  } finally {
    await tight.close();
  }
});

test("a shutdown drain waits for a slow reader's queued done before it closes the socket with 1001", async () => {
  // The reader stops reading and floods the server with bad messages, so that the error frames
  // fill the socket's buffers and its generation's frames wait in the server's queue behind
  // them; the generation then finishes while the reader is still paused, and the drain starts.
  const tight = await serve({ engine: s.engine, limits: { wsSoftBackpressure: 16 << 10, maxPendingBytes: 64 << 20 } });
  try {
    const ws = new WebSocket(`${tight.base.replace('http', 'ws')}/v1/ws`);
    await new Promise((r) => ws.once('open', r));
    const frames: { type: string; id: string | null; finish_reason?: string }[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as { type: string; id: string | null }));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.pause();
    const junk = JSON.stringify({ type: 'x'.repeat(1000) });
    for (let i = 0; i < 8000; i++) ws.send(junk);
    ws.send(JSON.stringify({ type: 'generate', id: 'g', prompt: 'Hi', settings }));
    const deadline = Date.now() + 60_000;
    while ((await scrape(tight.base)).get('dlm_requests_total{api="ws",status="accepted"}') !== 1) {
      assert.ok(Date.now() < deadline, 'the generation was not admitted');
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitIdle(tight.base, 60_000);
    assert.equal(tight.server.inFlight(), 1, 'its done still waits behind the unread frames, so it is still in flight');
    const drained = tight.server.drain(30);
    await new Promise((r) => setTimeout(r, 300));
    ws.resume();
    const report = await drained;
    assert.equal(await closed, 1001);
    const done = frames.find((f) => f.type === 'done' && f.id === 'g');
    assert.ok(done, `the done frame reached the reader before the close (${frames.length} frames)`);
    assert.equal(done.finish_reason, 'length');
    assert.deepEqual(report, { finished: 1, cutShort: 0, abandoned: 0 });
  } finally {
    await tight.close(); // after the drain's own close: closing twice is harmless
  }
});
