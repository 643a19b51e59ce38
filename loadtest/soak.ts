// `npm run soak -- --minutes M`: a real server (`node dist/server/main.js`, the default model
// unless --model) on loopback, under mixed JSON, SSE and WebSocket load at 16 concurrent with
// clients that leave midway, for M minutes or --requests requests, whichever comes first. Prints
// the server's and the engine's resident memory over time and its slope after the warm-up, the
// errors and the lost requests; then checks that nothing is left running in the server, stops it
// with SIGTERM (it must drain and exit 0) and exits non-zero when anything was lost, failed or
// leaked, or when memory grows faster than --max-slope MB/min (judged on windows of 3 minutes
// or more; loadtest/rss.ts). A request unanswered after --answer-timeout seconds (300) is lost:
// set it above the slowest generation the machine can take.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../server/config.js';
import { newLedger, SoakWorker } from './soak-clients.js';
import { childPids, type Point, rssMb, slopeMbPerMin, verdict } from './rss.js';

const MAIN = fileURLToPath(new URL('../server/main.js', import.meta.url));
const read = (p: string): string => readFileSync(p, 'utf8');

interface Options {
  minutes: number;
  requests: number;
  concurrency: number;
  modelDir: string;
  sampleSeconds: number;
  warmup: number;
  maxSlope: number;
  answerTimeoutS: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      requests: { type: 'string', default: '1000000' },
      concurrency: { type: 'string', default: '16' },
      model: { type: 'string', default: DEFAULT_MODEL_DIR },
      'sample-seconds': { type: 'string' },
      warmup: { type: 'string', default: '0.2' },
      'max-slope': { type: 'string', default: '1' },
      'answer-timeout': { type: 'string', default: '300' },
    },
    strict: true,
  });
  const num = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name}: expected a number in [${min}, ${max}], got '${v}'`);
    return n;
  };
  const minutes = num('minutes', values.minutes, 0.05, 24 * 60);
  return {
    minutes,
    requests: Math.floor(num('requests', values.requests, 1, 1e9)),
    concurrency: Math.floor(num('concurrency', values.concurrency, 1, 256)),
    modelDir: values.model,
    // About 40 samples a run, between 1 and 15 s apart.
    sampleSeconds: num('sample-seconds', values['sample-seconds'] ?? String(Math.min(15, Math.max(1, (minutes * 60) / 40))), 0.2, 600),
    warmup: num('warmup', values.warmup, 0, 0.9),
    maxSlope: num('max-slope', values['max-slope'], 0, 1e6),
    answerTimeoutS: num('answer-timeout', values['answer-timeout'], 1, 24 * 3600),
  };
}

/** The server as a user starts it, on a free loopback port; resolves once it says where it listens. */
async function startServer(modelDir: string): Promise<{ pid: number; base: string; exit: Promise<number | null>; log: () => string }> {
  const child = spawn(process.execPath, [MAIN, '--host', '127.0.0.1', '--port', '0', '--model', modelDir, '--no-chat'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  // Its first log lines say where it listens; the rest (a line a request) is kept for a failure report.
  const lines = createInterface({ input: child.stdout! });
  let port = 0;
  for await (const line of lines) {
    log = (log + line + '\n').slice(-4000);
    const m = /"port":(\d+)/.exec(line);
    if (m) {
      port = Number(m[1]);
      break;
    }
  }
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  if (port === 0) throw new Error(`the server did not start:\n${log}`);
  return { pid: child.pid!, base: `http://127.0.0.1:${port}`, exit, log: () => log };
}

async function liveSequences(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const name of ['dlm_live_sequences', 'dlm_engine_running_sequences', 'dlm_engine_queued_sequences']) {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    n += m ? Number(m[1]) : 0;
  }
  return n;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('the soak reads resident memory from /proc: Linux only');
  const server = await startServer(o.modelDir);
  // Interrupted, the soak takes its server down with it.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.kill(server.pid, 'SIGKILL');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  const enginePid = (): number | undefined => childPids(server.pid, read, readdirSync)[0];
  const firstEngine = enginePid();
  process.stdout.write(`soak: ${o.concurrency} concurrent (JSON, SSE, WebSocket in turn; some leave midway) for ${o.minutes} min or ${o.requests} requests against ${server.base}\n`);
  process.stdout.write(`soak: server pid ${server.pid}, engine pid ${firstEngine ?? '?'}; RSS every ${o.sampleSeconds} s\n`);
  process.stdout.write('   min  server MB  engine MB  requests  answered  left  cancelled  errors  lost\n');

  const ledger = newLedger();
  const series: Record<'server' | 'engine', Point[]> = { server: [], engine: [] };
  const t0 = performance.now();
  let engineRestarts = 0;
  let lastEngine = firstEngine;
  const sample = (): void => {
    const t = (performance.now() - t0) / 60_000;
    const e = enginePid();
    if (e !== undefined && lastEngine !== undefined && e !== lastEngine) engineRestarts++;
    lastEngine = e ?? lastEngine;
    const s = rssMb(server.pid, read);
    const em = e === undefined ? null : rssMb(e, read);
    if (s !== null) series.server.push({ t, mb: s });
    if (em !== null) series.engine.push({ t, mb: em });
    const l = ledger;
    process.stdout.write(`${t.toFixed(2).padStart(6)}  ${(s ?? NaN).toFixed(1).padStart(9)}  ${(em ?? NaN).toFixed(1).padStart(9)}  ${String(l.started).padStart(8)}  ${String(l.answered).padStart(8)}  ${String(l.disconnected).padStart(4)}  ${String(l.cancelled).padStart(9)}  ${String(l.errors).padStart(6)}  ${String(l.lost).padStart(4)}\n`);
  };
  sample();
  const timer = setInterval(sample, o.sampleSeconds * 1000);

  const deadline = t0 + o.minutes * 60_000;
  let next = 0;
  const workers = Array.from({ length: o.concurrency }, () => new SoakWorker(server.base, ledger, o.answerTimeoutS * 1000));
  await Promise.all(workers.map(async (w) => {
    while (performance.now() < deadline && next < o.requests) await w.run(next++);
    w.close();
  }));
  clearInterval(timer);
  sample();

  // Every client has its answer: nothing may still run in the server or the engine.
  let leaked = await liveSequences(server.base);
  for (let i = 0; i < 100 && leaked > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    leaked = await liveSequences(server.base);
  }
  process.kill(server.pid, 'SIGTERM');
  const code = await server.exit;

  const minutes = (performance.now() - t0) / 60_000;
  const after = (ps: Point[]): Point[] => ps.filter((p) => p.t >= o.warmup * minutes);
  const slopes = { server: slopeMbPerMin(after(series.server)), engine: slopeMbPerMin(after(series.engine)) };
  const window = series.server.length > 0 ? Math.max(0, minutes - o.warmup * minutes) : 0;
  const errors = ledger.errors + engineRestarts + (code === 0 ? 0 : 1);
  const v = verdict({ lost: ledger.lost, errors, leaked, windowMinutes: window, slopes, maxSlope: o.maxSlope });
  const range = (ps: Point[]): string => (ps.length === 0 ? '-' : `${Math.min(...ps.map((p) => p.mb)).toFixed(1)}..${Math.max(...ps.map((p) => p.mb)).toFixed(1)} MB`);

  process.stdout.write(`\nsoak: ${minutes.toFixed(2)} min, ${ledger.started} requests (json ${ledger.byKind.json}, sse ${ledger.byKind.sse}, ws ${ledger.byKind.ws}): ` +
    `${ledger.answered} answered, ${ledger.disconnected} left by the client, ${ledger.cancelled} cancelled, ${ledger.errors} errors, ${ledger.lost} lost\n`);
  process.stdout.write(`soak: server RSS ${range(series.server)}, slope ${slopes.server.toFixed(2)} MB/min; engine RSS ${range(series.engine)}, slope ${slopes.engine.toFixed(2)} MB/min ` +
    `(least squares after the first ${Math.round(o.warmup * 100)}% of the run, ${window.toFixed(1)} min)\n`);
  process.stdout.write(v.growthJudged
    ? `soak: growth limit ${o.maxSlope} MB/min per process\n`
    : `soak: growth not judged: ${window.toFixed(1)} min after warm-up is under 3 min\n`);
  process.stdout.write(`soak: ${leaked} sequences left running, ${engineRestarts} engine restarts, server exit code ${code} after SIGTERM\n`);
  for (const n of ledger.notes) process.stdout.write(`  ${n}\n`);
  if (code !== 0) process.stdout.write(`server log:\n${server.log()}\n`);
  if (v.failures.length > 0) {
    process.stdout.write(`soak: FAIL: ${v.failures.join('; ')}\n`);
    process.exit(1);
  }
  process.stdout.write('soak: ok\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
