// What every load scenario reports, in one shape: requests/s, tokens/s, latency and time to
// first block percentiles. Scenarios collect raw samples (one per finished request); this
// file turns them into the numbers that are printed and written as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** One finished request (or WebSocket generation). */
export interface Sample {
  /** Send to last byte. */
  latencyMs: number;
  /** Send to the first text the client could show (for a JSON answer: the whole answer). */
  firstBlockMs: number;
  completionTokens: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export interface ScenarioResult {
  scenario: string;
  /** Requests in flight at once (HTTP connections, or WebSocket sockets x generations each). */
  concurrency: number;
  /** Wall time measured, seconds. */
  seconds: number;
  /** Requests that finished with a complete answer within the time. */
  requests: number;
  /** Refused (429), failed or timed out. */
  errors: number;
  requestsPerSecond: number;
  /** Completion tokens of finished requests per second. */
  tokensPerSecond: number;
  latencyMs: Percentiles;
  firstBlockMs: Percentiles;
  /** Prompt tokens the server reported as served from its cache (shared-prefix scenario). */
  cachedPromptTokens?: number;
  /** Anything else the scenario measured (e.g. network calls per second). */
  extra?: Record<string, number>;
}

/** Nearest-rank percentile of ascending `sorted` (q in [0, 1]); NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function percentiles(xs: readonly number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN;
  return { p50: percentile(s, 0.5), p90: percentile(s, 0.9), p99: percentile(s, 0.99), mean };
}

export function summarize(scenario: string, concurrency: number, seconds: number, samples: readonly Sample[], errors: number): ScenarioResult {
  const tokens = samples.reduce((a, s) => a + s.completionTokens, 0);
  return {
    scenario,
    concurrency,
    seconds,
    requests: samples.length,
    errors,
    requestsPerSecond: samples.length / seconds,
    tokensPerSecond: tokens / seconds,
    latencyMs: percentiles(samples.map((s) => s.latencyMs)),
    firstBlockMs: percentiles(samples.map((s) => s.firstBlockMs)),
  };
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

export const TABLE_HEADER =
  'scenario        conc     req/s   tokens/s   lat p50/p90/p99 ms        first block p50/p90/p99 ms   errors';

export function formatRow(r: ScenarioResult): string {
  const lat = `${f1(r.latencyMs.p50)}/${f1(r.latencyMs.p90)}/${f1(r.latencyMs.p99)}`;
  const fb = `${f1(r.firstBlockMs.p50)}/${f1(r.firstBlockMs.p90)}/${f1(r.firstBlockMs.p99)}`;
  return `${r.scenario.padEnd(14)} ${String(r.concurrency).padStart(5)} ${f1(r.requestsPerSecond).padStart(9)} ${f1(r.tokensPerSecond).padStart(10)}   ${lat.padEnd(25)} ${fb.padEnd(28)} ${String(r.errors).padStart(6)}`;
}

/** Writes `data` as pretty JSON, creating the folder. NaN (no samples) becomes null. */
export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
