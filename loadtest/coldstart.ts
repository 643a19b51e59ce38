// `npm run bench:coldstart`: the real server started again and again (node dist/server/main.js
// on a loopback port), timing what a user waits for: /health answering 200 and the first
// content token of a streamed completion, sent the moment /health answers. Each start's stages
// come from the server's and the engine's DLM_STARTUP_TRACE lines on the bench's own clock.
// Variants, interleaved round by round so that machine load hits them alike:
//   cached  a start as `npm start` makes it once one has run: the optimised graph is mapped
//           from ONNX Runtime's cache (--ort-cache, on by default; written by an earlier start)
//   first   the first start with an empty cache folder (it optimises, then writes the cache
//           in the background)
//   off     the cache off (DLM_ORT_CACHE=off): every start optimises the graph
//   base    optional: another checkout's dist/ (--baseline-dist DIR), e.g. main before a change
// Ratios are against `base` when there is one (how much sooner this build is), else `off`.
//   npm run bench:coldstart -- [--runs 5] [--baseline-dist DIR] [--model DIR] [--threads N]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { wallMs } from '../engine/startup-trace.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REQUEST = { prompt: 'The king said', max_tokens: 16, steps: 16, seed: 1, stream: true };

interface Start {
  health: number;
  firstByte: number;
  firstToken: number;
  /** Stage name -> ms after the spawn. */
  stages: Map<string, number>;
  /** CPU time (all threads) each process had used when the first content token arrived. */
  cpu: { server: number; engine: number };
}

/**
 * A process's CPU milliseconds so far (user + system, all its threads), from /proc: on a
 * loaded machine wall times stretch with the load, the work a start does much less so.
 */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) in parentheses: utime is the 12th, stime the 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN; // not Linux
  }
}
/** USER_HZ, 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** One start, timed; with `fillsCache` the server stays up until its engine has written that cache folder. */
async function startOnce(main: string, args: string[], env: NodeJS.ProcessEnv, fillsCache?: string): Promise<Start> {
  const port = await freePort();
  const t0 = wallMs();
  const child = spawn(process.execPath, [main, '--host', '127.0.0.1', '--port', String(port), ...args], {
    env: { ...process.env, ...env, DLM_STARTUP_TRACE: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stages = new Map<string, number>();
  let enginePid: number | null = null;
  let err = '';
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    err = (err + d).slice(-4000);
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{"startup"')) continue;
      const m = JSON.parse(line) as { startup: string; t: number; pid: number };
      // The engine restarts only on a crash; its first marks are the start's.
      if (!stages.has(m.startup)) stages.set(m.startup, m.t - t0);
      if (m.startup === 'engine:process' && enginePid === null) enginePid = m.pid;
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const base = `http://127.0.0.1:${port}`;
    let health = NaN;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${err}`);
      try {
        if ((await fetch(`${base}/health`)).ok) { health = wallMs() - t0; break; }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 5));
    }
    if (Number.isNaN(health)) throw new Error(`no /health in 60 s:\n${err}`);
    const r = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(REQUEST) });
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let firstByte = NaN;
    let firstToken = NaN;
    let text = '';
    let cpu = { server: NaN, engine: NaN };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (Number.isNaN(firstByte)) firstByte = wallMs() - t0;
      text += dec.decode(value, { stream: true });
      if (Number.isNaN(firstToken) && /"text":"[^"]/.test(text)) {
        firstToken = wallMs() - t0;
        cpu = { server: cpuMsOf(child.pid!), engine: enginePid === null ? NaN : cpuMsOf(enginePid) };
      }
    }
    if (Number.isNaN(firstToken)) throw new Error(`the stream carried no text: ${text.slice(0, 300)}`);
    if (fillsCache !== undefined) await cacheWritten(fillsCache);
    return { health, firstByte, firstToken, stages, cpu };
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Waits for the background writer of a start's cache miss to put its graph in place. */
async function cacheWritten(dir: string): Promise<void> {
  const has = (): boolean => {
    try {
      return readdirSync(dir).some((f) => f.endsWith('.ort'));
    } catch {
      return false;
    }
  };
  for (const deadline = Date.now() + 120_000; !has();) {
    if (Date.now() > deadline) throw new Error(`no optimised graph in ${dir} after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (ms: number): string => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, model: { type: 'string' }, threads: { type: 'string' }, 'baseline-dist': { type: 'string' } } });
  const runs = Number(values.runs ?? 5);
  const model = resolve(values.model ?? join(ROOT, 'models/zoo/default'));
  const args = ['--model', model, ...(values.threads ? ['--threads', values.threads] : [])];
  const main = join(ROOT, 'dist/server/main.js');
  const work = mkdtempSync(join(tmpdir(), 'dlm-coldstart-'));
  const cached = join(work, 'cached');
  const variants: Array<{ name: string; main: string; env: () => NodeJS.ProcessEnv }> = [
    { name: 'cached', main, env: () => ({ DLM_ORT_CACHE: cached }) },
    { name: 'first', main, env: () => ({ DLM_ORT_CACHE: mkdtempSync(join(work, 'first-')) }) },
    { name: 'off', main, env: () => ({ DLM_ORT_CACHE: 'off' }) },
  ];
  if (values['baseline-dist']) variants.push({ name: 'base', main: join(resolve(values['baseline-dist']), 'server/main.js'), env: () => ({}) });
  const ref = values['baseline-dist'] ? 'base' : 'off';
  try {
    // Fills the cache `cached` reads.
    await startOnce(main, args, { DLM_ORT_CACHE: cached }, cached);
    const results = new Map<string, Start[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < runs; round++) {
      // Rotate the order so no variant always runs right after the same one.
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + round) % variants.length]!;
        const env = v.env();
        // A first start's cache writer runs after its first answer; the next start must not share the CPU with it.
        results.get(v.name)!.push(await startOnce(v.main, args, env, v.name === 'first' ? env.DLM_ORT_CACHE : undefined));
      }
      process.stderr.write(`round ${round + 1}/${runs}\n`);
    }
    console.log(`cold start, ${runs} starts per variant, model ${model}, request ${JSON.stringify(REQUEST)}`);
    console.log('seconds after spawn (median of the starts)\n');
    const stageNames = [...new Set([...results.values()].flatMap((rs) => rs.flatMap((r) => [...r.stages.keys()])))];
    stageNames.sort((a, b) => median(results.get('off')!.map((r) => r.stages.get(a) ?? NaN).filter(Number.isFinite)) - median(results.get('off')!.map((r) => r.stages.get(b) ?? NaN).filter(Number.isFinite)));
    const cols = variants.map((v) => v.name);
    console.log(`| stage | ${cols.join(' | ')} |`);
    console.log(`|---|${cols.map(() => '---:').join('|')}|`);
    for (const st of stageNames) {
      const cells = cols.map((c) => {
        const xs = results.get(c)!.map((r) => r.stages.get(st)).filter((x): x is number => x !== undefined);
        return xs.length ? fmt(median(xs)) : '-';
      });
      console.log(`| ${st} | ${cells.join(' | ')} |`);
    }
    for (const [key, label] of [['health', '/health 200'], ['firstByte', 'first SSE byte'], ['firstToken', 'first content token']] as const) {
      const refMed = median(results.get(ref)!.map((r) => r[key]));
      const cells = cols.map((c) => {
        const xs = results.get(c)!.map((r) => r[key]);
        const m = median(xs);
        return `**${fmt(m)}** (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}) x${(refMed / m).toFixed(2)}`;
      });
      console.log(`| ${label}: median (min-max) speed-up vs ${ref} | ${cells.join(' | ')} |`);
    }
    for (const who of ['server', 'engine'] as const) {
      const refMed = median(results.get(ref)!.map((r) => r.cpu[who]));
      const cells = cols.map((c) => {
        const m = median(results.get(c)!.map((r) => r.cpu[who]));
        return `${fmt(m)} x${(refMed / m).toFixed(2)}`;
      });
      console.log(`| ${who} CPU seconds to the first token: median, less vs ${ref} | ${cells.join(' | ')} |`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench:coldstart: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
