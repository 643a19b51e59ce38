// The README is a front page that points into docs/, and the docs point at each other and at
// the code: a moved section or a renamed heading silently breaks those links. This reads
// README.md and docs/*.md and fails on any relative link whose file is missing or whose
// #anchor names no heading of the target (GitHub's heading ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ROOT } from './helpers/spawned-server.js';

// Text outside ``` fences: links and headings inside code are not markdown.
function prose(text: string): string[] {
  const lines: string[] = [];
  let fence = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    else if (!fence) lines.push(line);
  }
  return lines;
}

// GitHub's heading ids: lower case, punctuation dropped, spaces to '-', repeats numbered.
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    const m = /^#{1,6} +(.*?) *#* *$/.exec(line);
    if (!m) continue;
    const base = m[1].toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

// Every broken relative link of one markdown file, as "target: why".
function brokenLinks(file: string, text: string, read: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const line of prose(text)) {
    const code = line.replace(/`[^`]*`/g, '');
    for (const m of code.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const resolved = path === '' ? file : join(dirname(file), decodeURIComponent(path));
      const body = read(resolved);
      if (body === undefined) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchors(body).has(anchor)) {
        broken.push(`${target}: no heading #${anchor}`);
      }
    }
  }
  return broken;
}

function readRepo(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return statSync(path).isDirectory() ? '' : readFileSync(path, 'utf8');
}

test('heading ids follow GitHub: punctuation dropped, backticks gone, repeats numbered', () => {
  const ids = anchors('# GPUs: `--device cuda`\n## Models\n```\n# not a heading\n```\n### Models\n');
  assert.deepEqual([...ids], ['gpus---device-cuda', 'models', 'models-1']);
});

test('the checker reports a missing file and a missing anchor, and passes good links', () => {
  const files: Record<string, string> = { 'docs/a.md': '# Title here\n', 'docs/x.svg': '<svg/>' };
  const text = '[ok](a.md#title-here) [img](x.svg) [gone](b.md) [bad](a.md#nope) [web](https://e.org/#x) `[code](no.md)`';
  const broken = brokenLinks('docs/c.md', text, (p) => files[p]);
  assert.deepEqual(broken, ['b.md: no such file', 'a.md#nope: no heading #nope']);
});

test('every relative link and anchor in README.md and docs/*.md resolves', () => {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f));
  const files = [join(ROOT, 'README.md'), ...docs];
  const broken = files.flatMap((f) =>
    brokenLinks(f, readFileSync(f, 'utf8'), readRepo).map((b) => `${relative(ROOT, f)}: ${b}`),
  );
  assert.deepEqual(broken, []);
});

test('the README links every docs/ page', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const missing = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md') && !readme.includes(`](docs/${f})`));
  assert.deepEqual(missing, []);
});
