// The edge bundle (`npm run bundle`) as a user gets it: built, copied somewhere else, started by
// its launcher from yet another directory, serving the default model to the official client.
// It must carry only this platform's native binaries and stay within the footprint budget.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, openSync, readSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { buildBundle, MAX_BUNDLE_BYTES } from '../scripts/bundle.js';
import { launch, type Launched } from './helpers/launched.js';
import { ROOT, freePort } from './helpers/spawned-server.js';

const work = mkdtempSync(join(tmpdir(), 'dlm-bundle-'));
let built: { dir: string; bytes: number; seconds: number };
let copy: string;
let server: Launched;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => statSync(join(dir, f)).isFile());
}

// ELF e_machine of the native code this Node runs (x64 = 62, arm64 = 183).
const ELF_MACHINE: Record<string, number> = { x64: 62, arm64: 183, arm: 40, ia32: 3, ppc64: 21, s390x: 22, riscv64: 243 };

const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
const OTHER_LIBC = glibc ? /[.-]musl\b/ : /[.-](glibc|gnu)\b/;

function elfMachine(path: string): number | null {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(20);
  readSync(fd, head, 0, 20, 0);
  closeSync(fd);
  if (head.readUInt32BE(0) !== 0x7f454c46) return null;
  return head[5] === 1 ? head.readUInt16LE(18) : head.readUInt16BE(18);
}

before(async () => {
  const t0 = performance.now();
  const r = buildBundle(join(work, 'built', `dlm-serve-${process.platform}-${process.arch}`));
  built = { ...r, seconds: (performance.now() - t0) / 1000 };
  // Where the bundle was built and the repository it came from must not matter: run a copy.
  copy = join(work, 'elsewhere', 'dlm-serve');
  cpSync(built.dir, copy, { recursive: true });
  rmSync(built.dir, { recursive: true });
  const port = await freePort();
  const cwd = mkdtempSync(join(tmpdir(), 'dlm-bundle-cwd-'));
  server = await launch(join(copy, 'bin', 'dlm-serve'), ['--host', '127.0.0.1', '--port', String(port), '--threads', '1'], { port, cwd });
});

after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

test(`the bundle is built in well under a minute and fits in ${MAX_BUNDLE_BYTES / 1024 / 1024} MB`, () => {
  assert.ok(built.seconds < 30, `bundle built in ${built.seconds.toFixed(1)} s`);
  assert.ok(built.bytes <= MAX_BUNDLE_BYTES, `bundle is ${(built.bytes / 1024 / 1024).toFixed(1)} MB`);
  assert.ok(built.bytes > 40 * 1024 * 1024, 'the bundle lacks the model or ONNX Runtime');
});

test("the bundle's native binaries are this platform's only, one per addon", () => {
  const files = filesUnder(copy);
  const native = files.filter((f) => /\.(node|so(\.\d+)*|dylib|dll)$/.test(f));
  const want = ELF_MACHINE[process.arch];
  for (const f of native) {
    assert.doesNotMatch(f, /\.(dylib|dll)$/, `${f}: another platform's library`);
    const others = ['darwin', 'win32', 'android', 'freebsd', process.platform === 'linux' ? '' : 'linux'].filter(Boolean);
    for (const o of others) assert.ok(!f.includes(o), `${f}: ${o} binary in a ${process.platform} bundle`);
    if (process.platform === 'linux') assert.doesNotMatch(f, OTHER_LIBC, `${f}: built for the other libc`);
    if (process.platform === 'linux') assert.equal(elfMachine(join(copy, f)), want, `${f} is not ${process.arch} ELF code`);
  }
  const addon = (re: RegExp): string[] => native.filter((f) => re.test(f));
  assert.deepEqual(addon(/^node_modules\/onnxruntime-node\/.*\.node$/), [`node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`]);
  assert.equal(addon(/onnxruntime_providers_(cuda|tensorrt)/).length, 0, 'a GPU provider in the CPU bundle');
  assert.deepEqual(addon(/^node_modules\/uWebSockets\.js\//), [`node_modules/uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`]);
  assert.equal(addon(/^node_modules\/tokenizers\//).length, 1, `tokenizers: ${addon(/tokenizers/).join(', ')}`);
  assert.ok(addon(/^node_modules\/@msgpackr-extract\/msgpackr-extract-[a-z0-9]+-[a-z0-9]+\//).every((f) => f.includes(`msgpackr-extract-${process.platform}-${process.arch}/`)));
});

test('the bundle holds the server, engine and default model, and no tests, tools or dev dependencies', () => {
  const files = filesUnder(copy);
  for (const f of ['dist/server/main.js', 'dist/engine/main.js', 'models/zoo/default/model.json', 'models/zoo/default/tokenizer.json', 'server/public/index.html', 'bin/dlm-serve', 'package.json']) {
    assert.ok(files.includes(f), `${f} missing`);
  }
  assert.ok(!files.some((f) => /^dist\/(test|loadtest|scripts)\//.test(f) || f.startsWith('dist/engine/eval/')), 'tests or tools in the bundle');
  assert.deepEqual(readdirSync(join(copy, 'models', 'zoo')), ['default'], 'only the default model ships');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const present = new Set(readdirSync(join(copy, 'node_modules')));
  // ws is also uWebSockets.js's own dependency (its pure-JS fallback), not only a dev one.
  for (const dev of Object.keys(pkg.devDependencies).filter((d) => d !== 'ws' && !d.startsWith('@types/'))) {
    assert.ok(!present.has(dev.split('/')[0]!), `dev dependency ${dev} in the bundle`);
  }
  assert.ok(!present.has('autocannon'), 'the load generator (loadtest only) is in the bundle');
  assert.ok(!files.some((f) => f.endsWith('.map') || f.endsWith('.d.ts')), 'source maps or type declarations in the bundle');
});

test('a copy of the bundle, started from another directory, serves the default model to the openai client', async () => {
  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const models = await client.models.list();
  const model = models.data[0]!.id;
  const defaults = JSON.parse(readFileSync(join(copy, 'models', 'zoo', 'default', 'model.json'), 'utf8')) as { name: string };
  assert.equal(model, defaults.name);
  const extra = { steps: 4, ignore_eos: true };
  const r = await client.completions.create({ model, prompt: 'The king', max_tokens: 8, seed: 3, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 8);
  assert.ok(r.choices[0]!.text.trim().length > 0, 'empty completion');
  const stream = await client.completions.create({ model, prompt: 'The king', max_tokens: 8, seed: 3, stream: true, ...extra } as OpenAI.CompletionCreateParamsStreaming);
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0]!.text, 'the stream and the JSON answer differ for the same seed');
});

test('the launcher refuses a Node of another major version with a clear message', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(join(copy, 'bin', 'dlm-serve'), ['--help'], { env: { ...process.env, DLM_NODE: '/bin/false' }, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /needs Node\.js \d+/);
  const ok = spawnSync(join(copy, 'bin', 'dlm-serve'), ['--help'], { cwd: tmpdir(), encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /--model DIR/);
});
