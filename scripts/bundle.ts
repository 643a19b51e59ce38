// `npm run bundle`: a self-contained folder that serves the default model on this platform,
// build/dlm-serve-<os>-<arch>/, started by bin/dlm-serve from any directory with the system's
// Node. It holds what a start loads and nothing else: the compiled modules reachable from the
// server's and the engine's entry points, the packages they import (and theirs), of each native
// addon only the binary for this platform and Node ABI, the chat page and the default model.
// The layout mirrors the repository (dist/, node_modules/, models/zoo/default, server/public),
// so the paths the code resolves from its own location (config.ts, static.ts) hold unchanged.
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The footprint budget for the edge: a bundle over this fails the build. */
export const MAX_BUNDLE_BYTES = 120 * 1024 * 1024;
// The cache writer is a process of its own that the engine starts (engine/optimized-cache.ts).
const ENTRIES = ['dist/server/main.js', 'dist/engine/main.js', 'dist/engine/ort-cache-writer.js'];

export function bundleName(): string {
  return `dlm-serve-${process.platform}-${process.arch}`;
}

// tsc writes single quotes, esbuild (the bundled entries, scripts/bundle-entries.ts) double ones.
const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm;

/** The compiled modules reachable from the entry points, and the bare packages they import. */
function moduleGraph(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = entries.map((e) => join(ROOT, e));
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    if (!existsSync(file)) throw new Error(`${relative(ROOT, file)} is missing: run npm run build first`);
    files.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

interface Pkg {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Package folders needed at run time: the imported ones and their installed dependencies, as Node resolves them. */
function packageClosure(names: Iterable<string>): Set<string> {
  const dirs = new Set<string>();
  const todo: Array<{ name: string; from: string; optional: boolean }> = [...names].map((name) => ({ name, from: ROOT, optional: false }));
  while (todo.length > 0) {
    const { name, from, optional } = todo.pop()!;
    let dir: string | null = null;
    for (let d = from; ; d = dirname(d)) {
      const candidate = join(d, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) { dir = candidate; break; }
      if (d === dirname(d) || d === dirname(ROOT)) break;
    }
    if (!dir) {
      // An optional dependency for another platform is simply not installed.
      if (optional) continue;
      throw new Error(`package ${name} (needed by ${relative(ROOT, from) || 'the server'}) is not installed`);
    }
    if (dirs.has(dir)) continue;
    dirs.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Pkg;
    for (const dep of Object.keys(pkg.dependencies ?? {})) todo.push({ name: dep, from: dir, optional: false });
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) todo.push({ name: dep, from: dir, optional: true });
  }
  return dirs;
}

/** Native binaries for platforms other than this one, and files no start reads. */
function keepFile(pkgName: string, rel: string): boolean {
  const { platform, arch } = process;
  if (/\.(d\.ts|d\.mts|d\.cts|map|md|markdown)$/i.test(rel) && !/^license/i.test(rel)) return false;
  if (/(^|\/)(docs?|examples?|tests?|__tests__|benchmarks?)\//.test(rel)) return false;
  // A glibc system loads no musl build of an addon, and the other way round.
  if (/\.node$/.test(rel) && (libc() === 'glibc' ? /[.-]musl\b/ : /[.-](glibc|gnu)\b/).test(rel)) return false;
  // node-gyp-build's layout: prebuilds/<platform>-<arch>[+<arch>...]/.
  const prebuilt = /^prebuilds\/([^/]+)\//.exec(rel);
  if (prebuilt) {
    const [os, archs] = prebuilt[1]!.split('-');
    return os === platform && (archs ?? '').split('+').includes(arch);
  }
  switch (pkgName) {
    case 'onnxruntime-node': {
      if (!rel.startsWith('bin/')) return true;
      const here = `bin/napi-v6/${platform}/${arch}/`;
      // The CPU bundle carries no GPU provider (scripts/install-cuda.sh adds it where wanted).
      return rel.startsWith(here) && !/providers_(cuda|tensorrt|rocm|migraphx|openvino)/.test(rel);
    }
    case 'uWebSockets.js':
      // src/uws.js loads binaries/uws_<platform>_<arch>_<abi>.node; dist/ is its pure-JS fallback.
      if (rel.endsWith('.node')) return rel === `binaries/uws_${platform}_${arch}_${process.versions.modules}.node`;
      return true;
    case 'tokenizers':
      if (rel.endsWith('.node')) return rel === `tokenizers.${tokenizersTriple()}.node`;
      return true;
    default:
      return true;
  }
}

/** The C library this Node runs on (Linux): addons ship a build per libc. */
function libc(): 'glibc' | 'musl' | '' {
  if (process.platform !== 'linux') return '';
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** napi-rs's name for this platform, as tokenizers/index.js picks its binding. */
function tokenizersTriple(): string {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${libc() === 'glibc' ? 'gnu' : 'musl'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function copyPackage(dir: string, into: string): void {
  // The name it is installed under (uWebSockets.js is an alias of another published name).
  const key = relative(ROOT, dir).split('node_modules/').at(-1)!;
  const nested = join(dir, 'node_modules');
  cpSync(dir, join(into, relative(ROOT, dir)), {
    recursive: true,
    filter: (src) => {
      if (src === nested || src.startsWith(nested + '/')) return false; // nested packages are copied on their own
      const rel = relative(dir, src);
      return rel === '' || statSync(src).isDirectory() || keepFile(key, rel);
    },
  });
}

function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, f) => sum + sizeOf(join(path, f)), 0);
}

const LAUNCHER = (nodeMajor: number): string => `#!/bin/sh
# Starts dlm-serve from this bundle with the system's Node ${nodeMajor} (the bundled addons are
# built for its ABI). Every option of npm start works: bin/dlm-serve --port 9000 --model DIR.
set -e
self=$(readlink -f "$0")
here=$(dirname "$(dirname "$self")")
node=\${DLM_NODE:-node}
major=$("$node" --version 2>/dev/null | sed 's/^v\\([0-9]*\\).*/\\1/') || true
if [ "$major" != "${nodeMajor}" ]; then
  echo "dlm-serve: this bundle needs Node.js ${nodeMajor} as 'node' on PATH (or DLM_NODE); found '\${major:-none}'" >&2
  exit 2
fi
exec "$node" "$here/dist/server/main.js" "$@"
`;

export interface BundleResult {
  dir: string;
  bytes: number;
}

export function buildBundle(out: string): BundleResult {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const { files, packages } = moduleGraph(ENTRIES);
  for (const f of files) cpSync(f, join(out, relative(ROOT, f)));
  for (const dir of packageClosure(packages)) copyPackage(dir, out);
  cpSync(join(ROOT, 'models/zoo/default'), join(out, 'models/zoo/default'), { recursive: true });
  if (existsSync(join(ROOT, 'server/public'))) {
    cpSync(join(ROOT, 'server/public'), join(out, 'server/public'), { recursive: true, filter: (s) => !s.endsWith('tsconfig.json') });
  }
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
  // "type": "module" makes dist/*.js ES modules, as in the repository.
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: root.name, version: root.version, license: root.license, private: true, type: 'module' }, null, 2)}\n`);
  mkdirSync(join(out, 'bin'));
  writeFileSync(join(out, 'bin/dlm-serve'), LAUNCHER(Number(process.versions.node.split('.')[0])));
  chmodSync(join(out, 'bin/dlm-serve'), 0o755);
  return { dir: out, bytes: sizeOf(out) };
}

function main(): void {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const out = resolve(values.out ?? join(ROOT, 'build', bundleName()));
  const t0 = performance.now();
  const { bytes } = buildBundle(out);
  const mb = (bytes / 1024 / 1024).toFixed(1);
  process.stdout.write(`${relative(process.cwd(), out) || out}: ${mb} MB (limit ${MAX_BUNDLE_BYTES / 1024 / 1024} MB), built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  if (bytes > MAX_BUNDLE_BYTES) {
    process.stderr.write(`bundle is ${mb} MB, over the ${MAX_BUNDLE_BYTES / 1024 / 1024} MB limit\n`);
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
