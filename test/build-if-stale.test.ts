// `npm start` compiles only when the build is out of date (scripts/build-if-stale.mjs): on a
// small real TypeScript project in a temporary folder, built with this repository's tsc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/spawned-server.js';

const SCRIPT = join(ROOT, 'scripts', 'build-if-stale.mjs');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function run(root: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('build-if-stale: builds a fresh checkout, skips tsc while current, rebuilds after a source changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-build-'));
  try {
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'p', private: true, type: 'module', scripts: { build: `node ${TSC} -p tsconfig.json` } }));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: [], outDir: 'dist', rootDir: '.' },
      include: ['src/**/*.ts'],
    }));
    writeFileSync(join(dir, 'src', 'a.ts'), 'export const a: number = 1;\n');
    const out = join(dir, 'dist', 'src', 'a.js');

    assert.equal(run(dir, '--check').status, 1, 'nothing built yet: stale');
    const first = run(dir);
    assert.equal(first.status, 0, first.out);
    assert.match(first.out, /building \(.*missing\)/);
    assert.match(readFileSync(out, 'utf8'), /a = 1/);
    const builtAt = statSync(out).mtimeMs;

    const again = run(dir);
    assert.equal(again.status, 0, again.out);
    assert.doesNotMatch(again.out, /building/);
    assert.equal(statSync(out).mtimeMs, builtAt, 'a current build is not compiled again');
    assert.equal(run(dir, '--check').out.trim(), 'current');

    writeFileSync(join(dir, 'src', 'a.ts'), 'export const a: number = 2;\n');
    const later = new Date(builtAt + 5000);
    utimesSync(join(dir, 'src', 'a.ts'), later, later);
    assert.match(run(dir, '--check').out, /stale: src\/a\.ts changed/);
    const rebuilt = run(dir);
    assert.equal(rebuilt.status, 0, rebuilt.out);
    assert.match(rebuilt.out, /building/);
    assert.match(readFileSync(out, 'utf8'), /a = 2/);

    writeFileSync(join(dir, 'src', 'b.ts'), 'export const b = 3;\n');
    assert.match(run(dir, '--check').out, /stale: dist\/src\/b\.js is missing/, 'a new source file needs a build');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('build-if-stale: this repository is current right after its own build (npm test builds first)', () => {
  const r = run(ROOT, '--check');
  assert.equal(r.out.trim(), 'current', r.out);
  assert.equal(r.status, 0);
});
