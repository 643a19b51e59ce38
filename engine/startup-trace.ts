// Start-up stage marks for `npm run bench:coldstart`: with DLM_STARTUP_TRACE=1 the server and
// the engine process each write one stderr line per stage with a wall-clock time, so that a
// caller can line up both processes' stages against its own clock. Off, it costs one env read.
const ON = process.env.DLM_STARTUP_TRACE === '1';

/** Wall-clock milliseconds with sub-millisecond precision (comparable across processes). */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export function markStartup(stage: string, extra: Record<string, string | number | boolean> = {}): void {
  if (!ON) return;
  // The process's CPU milliseconds so far (all threads): a loaded machine stretches wall time.
  const u = process.cpuUsage();
  process.stderr.write(`${JSON.stringify({ startup: stage, t: wallMs(), cpu: (u.user + u.system) / 1000, pid: process.pid, ...extra })}\n`);
}

/** Marks the process's own start (before any module loaded), once, for the first stage's base. */
export function markProcessStart(who: string): void {
  if (ON) process.stderr.write(`${JSON.stringify({ startup: `${who}:process`, t: performance.timeOrigin, pid: process.pid })}\n`);
}
