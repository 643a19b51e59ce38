// Optional API keys. With none configured every request is served; with some, a request needs
// `Authorization: Bearer <key>` naming one of them (browsers, which cannot set headers on a
// WebSocket, may pass `?api_key=` on the upgrade instead).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    // Compare digests, not keys: equal lengths for timingSafeEqual, and no early exit that
    // would leak how much of a key matched.
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  check(key: string | null): boolean {
    if (!this.enabled) return true;
    if (key === null || key === '') return false;
    const d = digest(key);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  }

  /** Read the key from a request; uWS requests are valid only in the handler's sync part. */
  fromRequest(req: HttpRequest, allowQuery: boolean): string | null {
    const h = req.getHeader('authorization');
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (m) return m[1]!.trim();
    if (allowQuery) {
      const q = req.getQuery('api_key');
      if (q) return decodeURIComponent(q);
    }
    return null;
  }
}
