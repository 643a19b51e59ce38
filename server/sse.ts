// A server-sent-events response with bounded memory for slow readers.
//
// Policy: while the socket accepts data we write each event as it comes. When uWS reports
// backpressure (write returns false) we stop writing and keep later events in our own queue,
// flushed from onWritable. A reader that stays slow until that queue exceeds `maxPendingBytes`
// is disconnected, which cancels its generations: memory per response stays bounded, and since
// nothing here ever waits on the socket, other clients are never slowed.
import type { HttpResponse } from 'uWebSockets.js';
import type { RequestState } from './http-io.js';

export class SseStream {
  private pending: string[] = [];
  private pendingBytes = 0;
  private blocked = false;
  private ending = false;
  private ended: () => void = () => {};
  /** Settles once the response has really ended (all queued data handed over) or the reader left. */
  private readonly gone = new Promise<void>((resolve) => (this.ended = resolve));

  constructor(
    private readonly res: HttpResponse,
    private readonly state: RequestState,
    private readonly maxPendingBytes: number,
    private readonly onOverflow: () => void,
  ) {
    state.onAbort.push(() => this.ended());
  }

  open(): void {
    if (this.state.aborted) return;
    this.res.cork(() => {
      this.res
        .writeStatus('200 OK')
        .writeHeader('Content-Type', 'text/event-stream')
        .writeHeader('Cache-Control', 'no-cache')
        .writeHeader('X-Accel-Buffering', 'no');
      // uWS sends the head with the first write; write nothing yet so the body starts clean.
      this.res.write('');
    });
    this.res.onWritable(() => this.flush());
  }

  /** One `data:` event holding `payload` as JSON. */
  send(payload: unknown): void {
    this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  /**
   * `data: [DONE]` and the end of the response, once everything queued has gone out; resolves
   * then (a shutdown must not close the socket under a slow reader's last events).
   */
  end(): Promise<void> {
    this.write('data: [DONE]\n\n');
    this.ending = true;
    if (!this.blocked) this.finish();
    if (this.state.aborted) this.ended();
    return this.gone;
  }

  private write(frame: string): void {
    if (this.state.aborted) return;
    if (this.blocked) {
      this.pending.push(frame);
      this.pendingBytes += Buffer.byteLength(frame);
      if (this.pendingBytes > this.maxPendingBytes) {
        this.pending = [];
        this.state.aborted = true;
        this.onOverflow();
        this.res.close();
        this.ended();
      }
      return;
    }
    this.res.cork(() => {
      if (!this.res.write(frame)) this.blocked = true;
    });
  }

  private flush(): boolean {
    if (this.state.aborted) return true;
    const data = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    let ok = true;
    this.res.cork(() => {
      ok = data === '' ? true : this.res.write(data);
    });
    this.blocked = !ok;
    if (ok && this.ending) this.finish();
    return ok;
  }

  private finish(): void {
    if (this.state.aborted) return;
    this.state.aborted = true;
    this.res.cork(() => this.res.end());
    this.ended();
  }
}
