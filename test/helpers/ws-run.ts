// One generation over a real WebSocket client: open /v1/ws, send a `generate`, collect every
// frame of that id until its `done` (or an `error` that ends it before admission), close.
import WebSocket from 'ws';

export type WsFrame = { type: string; id: string | null; [k: string]: unknown };

export async function wsGenerate(base: string, msg: { id: string; [k: string]: unknown }, ms = 60_000): Promise<WsFrame[]> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const frames: WsFrame[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no done for ${msg.id} in ${ms} ms; last: ${JSON.stringify(frames.slice(-2))}`)), ms);
      ws.on('message', (data: Buffer) => {
        const f = JSON.parse(data.toString('utf8')) as WsFrame;
        if (f.id !== msg.id && f.id !== null) return;
        frames.push(f);
        // An error before admission is the generation's last frame; one after it precedes done.
        const admitted = frames.some((x) => x.type !== 'error');
        if (f.type === 'done' || (f.type === 'error' && !admitted)) {
          clearTimeout(timer);
          resolve();
        }
      });
      ws.send(JSON.stringify({ type: 'generate', ...msg }));
    });
  } finally {
    ws.close();
  }
  return frames;
}
