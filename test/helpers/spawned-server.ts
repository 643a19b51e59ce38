// The real server as a user starts it (`node dist/server/main.js --port P --model DIR`), in a
// child process on a loopback port, for tests that must stop and restart it (the browser's
// reconnect) or that check what `npm start` serves.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SERVER_MAIN = join(ROOT, 'dist', 'server', 'main.js');
export const TEST_MODEL_DIR = process.env.DLM_TEST_MODEL ?? join(ROOT, 'models', 'zoo', 'tiny-mdlm');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class SpawnedServer {
  private child: ChildProcess | null = null;
  /** The last few KB of the server's output, for failure messages. */
  log = '';

  private exit: Promise<number | null> | null = null;

  constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
    /** Its own process group, as a terminal's foreground job is (see signal()). */
    private readonly detached = false,
  ) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once /health answers. */
  async start(): Promise<void> {
    const args = [SERVER_MAIN, '--host', '127.0.0.1', '--port', String(this.port), '--model', TEST_MODEL_DIR, '--threads', '1', ...this.extraArgs];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: this.detached });
    this.exit = new Promise((r) => child.once('exit', (code, sig) => r(code ?? (sig === null ? null : 128 + (constants.signals[sig] ?? 0)))));
    const keep = (d: unknown): void => {
      this.log = (this.log + String(d)).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${this.log}`);
      try {
        if ((await fetch(`${this.base}/health`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not become healthy in 30 s:\n${this.log}`);
  }

  /**
   * Sends `sig` to the server, or with `group` to its whole process group (the server and its
   * engine), as Ctrl-C in a terminal or systemd's stop do; needs a detached server.
   */
  signal(sig: NodeJS.Signals, group = false): void {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('server not started');
    process.kill(group ? -pid : pid, sig);
  }

  /** Its exit code (128 + the signal's number when a signal killed it). */
  exited(): Promise<number | null> {
    if (this.exit === null) throw new Error('server not started');
    return this.exit;
  }

  /** Kills the server at once, as a crash or a restart would. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
