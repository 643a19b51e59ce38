// The browser chat page (server/public/) served by the server itself: `/` is the page and
// `/chat/<file>` its assets. The files are few and small, so they are read once at mount and
// answered from memory; a request can only name a file that was there at mount, which rules
// out path traversal without any path arithmetic. The page speaks only the public WebSocket
// API, so turning it off (`enabled: false`) changes nothing else.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

export interface ChatPageOptions {
  /** Serve the page at all (the server's `--no-chat` / `DLM_CHAT=0` turns it off). */
  enabled: boolean;
  /** Folder holding index.html and its assets; defaults to the repository's server/public. */
  dir?: string;
}

/** Where the page lives in the repository, from either server/ (tsx) or dist/server/ (tsc). */
export function defaultChatDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, 'public'), join(here, '..', '..', 'server', 'public')];
  for (const dir of candidates) {
    try {
      if (statSync(join(dir, 'index.html')).isFile()) return dir;
    } catch {
      // not this layout; try the next
    }
  }
  throw new Error(`chat page not found (looked in ${candidates.join(', ')}); ship server/public beside dist/, or start with --no-chat`);
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// The page loads nothing from elsewhere; saying so lets the browser refuse injected content.
// 'self' in connect-src covers the same-origin ws:/wss: URL of /v1/ws (CSP level 3).
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || !statSync(path).isFile()) continue;
    assets.set(name, { body: readFileSync(path), type });
  }
  if (!assets.has('index.html')) throw new Error(`chat page: ${dir} has no index.html`);
  return assets;
}

function send(res: HttpResponse, asset: Asset): void {
  res.cork(() => {
    res
      .writeStatus('200 OK')
      .writeHeader('Content-Type', asset.type)
      // Small files, changed by deploys: revalidate rather than serve a stale page.
      .writeHeader('Cache-Control', 'no-cache')
      .writeHeader('X-Content-Type-Options', 'nosniff')
      .writeHeader('Content-Security-Policy', CSP)
      .end(asset.body);
  });
}

function notFound(res: HttpResponse, what: string): void {
  const body = JSON.stringify({
    error: { message: `no such file: ${what}`, type: 'invalid_request_error', param: null, code: 'not_found' },
  });
  res.cork(() => {
    res.writeStatus('404 Not Found').writeHeader('Content-Type', 'application/json').end(body);
  });
}

/**
 * Registers `GET /` and `GET /chat/*` on the app when enabled. Returns the names served
 * (empty when disabled), which the server may log.
 */
export function mountChatPage(app: TemplatedApp, opts: ChatPageOptions): string[] {
  if (!opts.enabled) return [];
  const assets = loadAssets(opts.dir ?? defaultChatDir());
  const index = assets.get('index.html') as Asset;
  app.get('/', (res: HttpResponse) => send(res, index));
  app.get('/chat/*', (res: HttpResponse, req: HttpRequest) => {
    const name = req.getUrl().slice('/chat/'.length);
    const asset = assets.get(name);
    if (asset === undefined) notFound(res, req.getUrl());
    else send(res, asset);
  });
  return [...assets.keys()];
}
