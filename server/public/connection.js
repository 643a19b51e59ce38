// @ts-check
// One WebSocket to /v1/ws that comes back by itself. When the socket drops (server restart,
// network), generations on it are lost - the server cancels them - so the page is told at
// once, and reconnects with capped, jittered exponential backoff so that a fleet of open tabs
// does not hammer a server that is coming back up.

/**
 * @typedef {{ state: 'connecting' } | { state: 'open' } | { state: 'waiting', attempt: number, retryInMs: number, reason: string }} Status
 * @typedef {{ onStatus?: (s: Status) => void, onFrame?: (f: Record<string, unknown>) => void, onLost?: (reason: string) => void,
 *             minDelayMs?: number, maxDelayMs?: number, random?: () => number,
 *             WebSocketImpl?: typeof WebSocket }} Options
 */

/**
 * Delay before reconnect attempt `attempt` (1-based): doubles from minDelay up to maxDelay,
 * then a random factor in [0.5, 1) spreads clients out.
 * @param {number} attempt
 * @param {number} minDelayMs
 * @param {number} maxDelayMs
 * @param {number} r a number in [0, 1)
 */
export function backoffDelay(attempt, minDelayMs, maxDelayMs, r) {
  const base = Math.min(maxDelayMs, minDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + r / 2));
}

export class Connection {
  /**
   * @param {string | (() => string)} url a function is asked again at every (re)connect, so a
   *   changed API key takes effect on the next socket
   * @param {Options} [opts]
   */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = opts;
    this.minDelayMs = opts.minDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 8000;
    this.attempt = 0;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.closed = false;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === 1;
  }

  start() {
    this.closed = false;
    this.connect();
  }

  connect() {
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    this.opts.onStatus?.({ state: 'connecting' });
    const ws = new Impl(typeof this.url === 'function' ? this.url() : this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.opts.onStatus?.({ state: 'open' });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return; // JSON text frames only: we never ask for msgpack
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        this.opts.onFrame?.({ type: 'error', id: null, code: 'bad_frame', message: 'the server sent a frame that is not JSON' });
        return;
      }
      if (frame !== null && typeof frame === 'object') this.opts.onFrame?.(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const reason = opened
        ? `connection lost (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`
        : 'server unreachable or connection refused';
      if (opened) this.opts.onLost?.(reason);
      if (this.closed) return;
      this.attempt += 1;
      const retryInMs = backoffDelay(this.attempt, this.minDelayMs, this.maxDelayMs, (this.opts.random ?? Math.random)());
      this.opts.onStatus?.({ state: 'waiting', attempt: this.attempt, retryInMs, reason });
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, retryInMs);
    };
    // onerror is always followed by onclose, which does the work.
    ws.onerror = () => {};
  }

  /** Try again now instead of waiting out the backoff (the user asked). */
  retryNow() {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  /**
   * @param {Record<string, unknown>} frame
   * @returns {boolean} false when there is no open socket to send it on
   */
  send(frame) {
    if (!this.open || this.ws === null) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Drop the socket and connect again at once (settings of the URL changed). */
  reconnect() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.attempt = 0;
    this.connect();
  }

  close() {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.close();
  }
}
