// A server started by an arbitrary command (the edge bundle's launcher, an OCI image run by
// buildah), waited on until /health answers on its loopback port, and stopped by its process id.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Launched {
  readonly base: string;
  readonly child: ChildProcess;
  /** The last few KB of its output, for failure messages. */
  log(): string;
  /** Ends it with `signal` and waits for its exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export async function launch(
  command: string,
  args: string[],
  opts: { port: number; cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Launched> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: unknown): void => {
    log = (log + String(d)).slice(-6000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const base = `http://127.0.0.1:${opts.port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const launched: Launched = {
    base,
    child,
    log: () => log,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return launched;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await launched.stop('SIGKILL');
  throw new Error(`${command} did not answer /health within ${opts.timeoutMs ?? 60_000} ms:\n${log}`);
}
