// Process memory over a soak: resident set sizes read from /proc (Linux), the least-squares
// slope of a series after its warm-up, and the verdict a soak ends with.

/** Resident set size of `pid` in MB (VmRSS), or null when the process is gone. */
export function rssMb(pid: number, read: (path: string) => string): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(read(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The child processes of `pid` (all its threads' children), from /proc. */
export function childPids(pid: number, read: (path: string) => string, list: (path: string) => string[]): number[] {
  const out: number[] = [];
  try {
    for (const tid of list(`/proc/${pid}/task`)) {
      out.push(...read(`/proc/${pid}/task/${tid}/children`).trim().split(/\s+/).filter((s) => s !== '').map(Number));
    }
  } catch {
    // the process is gone
  }
  return out;
}

export interface Point {
  /** Minutes since the start. */
  t: number;
  mb: number;
}

/** Least-squares slope of mb over t, MB per minute (0 for fewer than two distinct times). */
export function slopeMbPerMin(points: readonly Point[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mm = points.reduce((a, p) => a + p.mb, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.mb - mm);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * The window a slope is judged on must be long enough that a garbage collection or an arena
 * growing to its plateau does not read as a trend: shorter runs print their slope unjudged.
 */
export const MIN_JUDGED_MINUTES = 3;

export interface SoakOutcome {
  lost: number;
  errors: number;
  /** Sequences still live in the server or engine after every client had its answer. */
  leaked: number;
  /** Minutes of samples after the warm-up. */
  windowMinutes: number;
  slopes: Record<string, number>;
  /** MB/min above which growth counts as unbounded. */
  maxSlope: number;
}

/** Why the soak failed (empty: it passed), and whether its growth was judged at all. */
export function verdict(o: SoakOutcome): { failures: string[]; growthJudged: boolean } {
  const failures: string[] = [];
  if (o.lost > 0) failures.push(`${o.lost} request(s) lost: admitted, never answered`);
  if (o.errors > 0) failures.push(`${o.errors} error(s)`);
  if (o.leaked > 0) failures.push(`${o.leaked} sequence(s) still live after the load ended`);
  const growthJudged = o.windowMinutes >= MIN_JUDGED_MINUTES;
  if (growthJudged) {
    for (const [name, s] of Object.entries(o.slopes)) {
      if (s > o.maxSlope) failures.push(`${name} RSS grows ${s.toFixed(2)} MB/min after warm-up (limit ${o.maxSlope} MB/min)`);
    }
  }
  return { failures, growthJudged };
}
