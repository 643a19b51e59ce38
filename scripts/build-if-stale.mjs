#!/usr/bin/env node
// `npm start`'s prestart: compile only when the build is out of date, so that a start with a
// current dist/ serves at once (a full tsc run takes many seconds) and a start in a pruned
// production install, where TypeScript is absent, needs no compiler at all.
//
// Plain JavaScript because it runs before anything is compiled. The build is current when every
// TypeScript source that tsconfig.json includes has its emitted .js in outDir and no input
// (those sources, the chat page's checked .js, the tsconfig files themselves) is newer than the
// oldest emitted file: tsc rewrites every output on each run, so the oldest output is the time
// of the last build. A git checkout stamps the files it changes with the current time, which
// makes switching branches count as a change too.
//
//   node scripts/build-if-stale.mjs [--root DIR] [--check]
//     --check  only say whether a build is needed: exit 0 when current, 1 when stale.
// Otherwise runs `npm run build` in DIR when stale (and exits with its status).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The tsconfig files `npm run build` compiles, relative to the root; the first one emits. */
const PROJECTS = ['tsconfig.json', 'server/public/tsconfig.json'];

/** Files below `dir` whose names end with `ext`; into subfolders only when `deep`. */
function walk(dir, ext, deep, out) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (deep && e.name !== 'node_modules') walk(p, ext, deep, out);
    } else if (e.name.endsWith(ext)) {
      out.push(p);
    }
  }
  return out;
}

/**
 * The files one tsconfig takes in. Only the include forms this repository uses are understood:
 * `DIR/**\/*.EXT` and `*.EXT`, relative to the tsconfig's folder.
 */
function inputsOf(tsconfigPath) {
  // The repository's tsconfig files are plain JSON (no comments), so JSON.parse reads them.
  const cfg = JSON.parse(readFileSync(tsconfigPath, 'utf8'));
  const base = dirname(tsconfigPath);
  const files = [];
  for (const pattern of cfg.include ?? []) {
    const star = pattern.lastIndexOf('*');
    const ext = pattern.slice(star + 1);
    const head = pattern.split('/').filter((s) => !s.includes('*')).join('/');
    walk(join(base, head), ext, pattern.includes('**'), files);
  }
  return { cfg, files };
}

/** Why the build in `root` is stale, or null when it is current. */
function staleReason(root) {
  let oldestOutput = Infinity;
  let newestInput = -Infinity;
  let newestName = '';
  const seeInput = (p) => {
    const t = statSync(p).mtimeMs;
    if (t > newestInput) {
      newestInput = t;
      newestName = relative(root, p);
    }
  };
  for (const [i, project] of PROJECTS.entries()) {
    const path = join(root, project);
    if (!existsSync(path)) continue;
    seeInput(path);
    const { cfg, files } = inputsOf(path);
    for (const src of files) {
      seeInput(src);
      if (i !== 0 || src.endsWith('.d.ts') || !src.endsWith('.ts')) continue;
      const opts = cfg.compilerOptions ?? {};
      const out = join(root, opts.outDir ?? '.', relative(join(root, opts.rootDir ?? '.'), src)).replace(/\.ts$/, '.js');
      if (!existsSync(out)) return `${relative(root, out)} is missing`;
      oldestOutput = Math.min(oldestOutput, statSync(out).mtimeMs);
    }
  }
  if (oldestOutput === Infinity) return 'nothing is built yet';
  if (newestInput > oldestOutput) return `${newestName} changed since the last build`;
  return null;
}

function main() {
  const { values } = parseArgs({ options: { root: { type: 'string' }, check: { type: 'boolean' } }, strict: true });
  const root = resolve(values.root ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const why = staleReason(root);
  if (values.check) {
    process.stdout.write(why === null ? 'current\n' : `stale: ${why}\n`);
    process.exit(why === null ? 0 : 1);
  }
  if (why === null) return;
  process.stderr.write(`dlm-serve: building (${why})\n`);
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

main();
