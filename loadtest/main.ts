// `npm run loadtest`: load scenarios against a server on loopback, each at several
// concurrencies for a fixed time; prints requests/s, tokens/s, latency and time to first block
// percentiles, writes them as JSON, and draws tokens/s against concurrency as an SVG.
//
//   npm run loadtest -- [--model DIR | --url http://127.0.0.1:PORT] [--scenarios completions,sse,ws,shared-prefix]
//     [--concurrency 1,4,16] [--seconds 5] [--max-tokens 32] [--steps 16] [--max-batch 16]
//     [--max-queue 256] [--per-socket 4] [--requests N] [--threads N] [--out .work/loadtest]
//
// Each point runs for --seconds; with --requests N it runs max(N, concurrency) requests instead
// and times them all to the last answer (no request cut off by the clock).
//
// Scenarios:
//   completions    POST /v1/completions, JSON answers (autocannon); first block = whole answer
//   sse            POST /v1/completions with stream: true (autocannon); first block = first text event
//   ws             /v1/ws: sockets x generations each (`ws` client), closed loop
//   shared-prefix  POST /v1/chat/completions, streamed, every request with the same long system
//                  prompt and its own question (what a prefix cache would serve)
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../server/config.js';
import { httpLoad } from './http-load.js';
import { formatRow, TABLE_HEADER, writeJson, writeText, type ScenarioResult } from './report.js';
import { lineChart } from './svg-chart.js';
import { remoteTarget, startTarget, type Target } from './target.js';
import { wsLoad } from './ws-load.js';

export const SCENARIOS = ['completions', 'sse', 'ws', 'shared-prefix'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The same for every shared-prefix request, as a product's system prompt would be. */
export const SYSTEM_PROMPT =
  'You are a careful assistant for a small library. Answer in plain words, keep to the facts you were given, and say so when you do not know.';

export interface LoadSettings {
  maxTokens: number;
  steps: number;
  perSocket: number;
  seconds: number;
  /** Requests per point (all timed to the end) instead of a fixed time; at least the concurrency. */
  requests?: number;
}

export async function runScenario(t: Target, scenario: Scenario, concurrency: number, s: LoadSettings): Promise<ScenarioResult> {
  const total = s.requests !== undefined ? Math.max(s.requests, concurrency) : undefined;
  const gen = (n: number): Record<string, unknown> => ({ max_tokens: s.maxTokens, steps: s.steps, ignore_eos: true, seed: n });
  switch (scenario) {
    case 'completions':
    case 'sse':
      return httpLoad({
        scenario, base: t.base, path: '/v1/completions', concurrency, seconds: s.seconds, total,
        body: (n) => ({
          model: t.model, prompt: `Story ${n} begins`, ...gen(n),
          ...(scenario === 'sse' ? { stream: true, stream_options: { include_usage: true } } : {}),
        }),
      });
    case 'shared-prefix':
      return httpLoad({
        scenario, base: t.base, path: '/v1/chat/completions', concurrency, seconds: s.seconds, total,
        body: (n) => ({
          model: t.model,
          messages: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: `Question ${n}: what is on shelf ${n % 7}?` }],
          stream: true, stream_options: { include_usage: true }, ...gen(n),
        }),
      });
    case 'ws': {
      return wsLoad({
        scenario, base: t.base, concurrency, perSocket: s.perSocket, seconds: total !== undefined ? 600 : s.seconds, total,
        generate: (n) => ({ prompt: `Story ${n} begins`, settings: gen(n) }),
      });
    }
  }
}

/** tokens/s against concurrency, one line per scenario. */
export function throughputChart(results: readonly ScenarioResult[], title: string): string {
  const names = [...new Set(results.map((r) => r.scenario))];
  return lineChart({
    title,
    xLabel: 'concurrent requests',
    yLabel: 'tokens/s',
    series: names.map((name) => ({
      name,
      // A point where nothing was measured (no request finished in time) is left out, not drawn as 0.
      points: results.filter((r) => r.scenario === name && r.tokensPerSecond > 0).map((r) => [r.concurrency, r.tokensPerSecond] as const),
    })),
  });
}

function intList(flag: string, v: string): number[] {
  const xs = v.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag}: expected positive integers separated by commas, got '${v}'`);
  return xs;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: process.env.DLM_MODEL ?? DEFAULT_MODEL_DIR },
      url: { type: 'string' },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      concurrency: { type: 'string', default: '1,4,16' },
      seconds: { type: 'string', default: '5' },
      'max-tokens': { type: 'string', default: '32' },
      steps: { type: 'string', default: '16' },
      'max-batch': { type: 'string', default: '16' },
      'max-queue': { type: 'string', default: '256' },
      'per-socket': { type: 'string', default: '4' },
      requests: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string', default: '.work/loadtest' },
    },
    strict: true,
  });
  const scenarios = values.scenarios!.split(',').map((x) => x.trim());
  for (const sc of scenarios) if (!(SCENARIOS as readonly string[]).includes(sc)) throw new Error(`--scenarios: unknown '${sc}' (${SCENARIOS.join(', ')})`);
  const concurrency = intList('--concurrency', values.concurrency!);
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 600)) throw new Error(`--seconds: expected (0, 600], got '${values.seconds}'`);
  const settings: LoadSettings = { maxTokens: Number(values['max-tokens']), steps: Number(values.steps), perSocket: Number(values['per-socket']), seconds };
  if (values.requests !== undefined) settings.requests = intList('--requests', values.requests)[0]!;
  const maxBatch = Number(values['max-batch']);
  const maxQueue = Number(values['max-queue']);
  const target = values.url
    ? await remoteTarget(values.url)
    : await startTarget({ modelDir: values.model!, maxBatch, maxQueue, threads: values.threads ? Number(values.threads) : undefined });
  const out = resolve(values.out!);
  const results: ScenarioResult[] = [];
  try {
    console.log(`load test: ${target.model} at ${target.base}, ${settings.requests !== undefined ? `${settings.requests} requests` : `${seconds} s`} per point, ${settings.maxTokens} tokens, ${settings.steps} steps${values.url ? '' : `, max batch ${maxBatch}`}`);
    console.log(TABLE_HEADER);
    for (const sc of scenarios as Scenario[]) {
      for (const c of concurrency) {
        const r = await runScenario(target, sc, c, settings);
        results.push(r);
        console.log(formatRow(r));
        if (r.requests === 0) console.log(`  (no ${sc} request finished within ${seconds} s at concurrency ${c}: run longer with --seconds, or use --requests)`);
      }
    }
  } finally {
    await target.close();
  }
  const config = { model: target.model, url: values.url ?? null, maxBatch: values.url ? null : maxBatch, ...settings, concurrency, date: new Date().toISOString() };
  writeJson(join(out, 'loadtest.json'), { config, results });
  writeText(join(out, 'throughput.svg'), throughputChart(results, `${target.model}: tokens/s by scenario`));
  console.log(`wrote ${join(out, 'loadtest.json')} and ${join(out, 'throughput.svg')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Exit explicitly: after WebSocket load, uWS's native side keeps the loop alive for ~30 s
  // after the server is closed, with nothing left to do.
  main().then(() => process.exit(0), (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
