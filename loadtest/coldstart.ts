// `npm run bench:coldstart`: the real server started again and again (node dist/server/main.js
// on a loopback port), timing what a user waits for: /health answering 200 and the first
// content token of a streamed completion, sent the moment /health answers. Each start's stages
// come from the server's and the engine's DLM_STARTUP_TRACE lines on the bench's own clock.
// Variants, interleaved round by round so that machine load hits them alike:
//   off     ONNX Runtime's optimised-graph cache off (every start optimises the graph)
//   first   a fresh, empty cache folder (the start optimises and writes the cache)
//   cached  the cache written by an earlier start (optimisation skipped)
//   base    optional: another checkout's dist/ (--baseline-dist DIR), e.g. main before a change
// Ratios are against `off` measured in the same run.
//   npm run bench:coldstart -- [--runs 5] [--model DIR] [--threads N] [--baseline-dist DIR]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
}

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

async function startOnce(main: string, args: string[], env: NodeJS.ProcessEnv): Promise<Start> {
  const port = await freePort();
  const t0 = wallMs();
  const child = spawn(process.execPath, [main, '--host', '127.0.0.1', '--port', String(port), ...args], {
    env: { ...process.env, ...env, DLM_STARTUP_TRACE: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stages = new Map<string, number>();
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    err = (err + d).slice(-4000);
    for (const line of d.split('\n')) {
      if (!line.startsWith('{"startup"')) continue;
      const m = JSON.parse(line) as { startup: string; t: number };
      // The engine restarts only on a crash; its first marks are the start's.
      if (!stages.has(m.startup)) stages.set(m.startup, m.t - t0);
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
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (Number.isNaN(firstByte)) firstByte = wallMs() - t0;
      text += dec.decode(value, { stream: true });
      if (Number.isNaN(firstToken) && /"text":"[^"]/.test(text)) firstToken = wallMs() - t0;
    }
    if (Number.isNaN(firstToken)) throw new Error(`the stream carried no text: ${text.slice(0, 300)}`);
    return { health, firstByte, firstToken, stages };
  } finally {
    child.kill('SIGKILL');
    await exited;
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
    { name: 'off', main, env: () => ({ DLM_ORT_CACHE: 'off' }) },
    { name: 'first', main, env: () => ({ DLM_ORT_CACHE: mkdtempSync(join(work, 'first-')) }) },
    { name: 'cached', main, env: () => ({ DLM_ORT_CACHE: cached }) },
  ];
  if (values['baseline-dist']) variants.push({ name: 'base', main: join(resolve(values['baseline-dist']), 'server/main.js'), env: () => ({}) });
  try {
    await startOnce(main, args, { DLM_ORT_CACHE: cached }); // writes the cache `cached` reads
    const results = new Map<string, Start[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < runs; round++) {
      // Rotate the order so no variant always runs right after the same one.
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + round) % variants.length]!;
        results.get(v.name)!.push(await startOnce(v.main, args, v.env()));
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
    const off = results.get('off')!;
    for (const [key, label] of [['health', '/health 200'], ['firstByte', 'first SSE byte'], ['firstToken', 'first content token']] as const) {
      const offMed = median(off.map((r) => r[key]));
      const cells = cols.map((c) => {
        const xs = results.get(c)!.map((r) => r[key]);
        const m = median(xs);
        return `**${fmt(m)}** (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}) x${(offMed / m).toFixed(2)}`;
      });
      console.log(`| ${label}: median (min-max) speed-up vs off | ${cells.join(' | ')} |`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench:coldstart: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
