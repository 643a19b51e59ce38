// The import graph of the TypeScript sources, read with the TypeScript compiler's own import
// scanner (ts.preProcessFile, type-only imports included): no cycle anywhere in engine/,
// server/, tokenizer/ or loadtest/, and the one-way rule (server -> engine protocol <- engine:
// nothing in engine/ or tokenizer/ imports server/). A cycle or a back edge fails naming its files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIRS = ['engine', 'server', 'tokenizer', 'loadtest'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Repository-relative file -> the repository-relative .ts files it imports. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of DIRS.flatMap((d) => sources(join(ROOT, d)))) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue; // packages and node: builtins
      const target = resolve(dirname(file), fileName).replace(/\.js$/, '.ts');
      if (existsSync(target)) deps.push(relative(ROOT, target));
    }
    g.set(relative(ROOT, file), deps);
  }
  return g;
}

/** Every cycle found by a depth-first walk, each as the files around it. */
function cycles(g: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const found: string[][] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    path.push(f);
    for (const d of g.get(f) ?? []) {
      if (state.get(d) === 'open') found.push([...path.slice(path.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    path.pop();
    state.set(f, 'done');
  };
  for (const f of [...g.keys()].sort()) if (!state.has(f)) visit(f);
  return found;
}

const g = graph();

test('the graph is read: the engine, server, tokenizer and load-test sources with their imports', () => {
  assert.ok(g.size > 50, `${g.size} files`);
  assert.ok(g.get('server/app.ts')?.includes('server/metrics.ts'));
  assert.ok(g.get('engine/core.ts')?.includes('engine/scheduler.ts'));
  // The walk finds a cycle when there is one.
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c', 'a']]);
});

test('no import cycle in engine/, server/, tokenizer/ or loadtest/', () => {
  const found = cycles(g);
  assert.deepEqual(found.map((c) => c.join(' -> ')), []);
});

test('one way: nothing in engine/ or tokenizer/ imports server/', () => {
  const back = [...g].flatMap(([f, deps]) => (/^(engine|tokenizer)\//.test(f) ? deps.filter((d) => d.startsWith('server/')).map((d) => `${f} -> ${d}`) : []));
  assert.deepEqual(back, []);
});
