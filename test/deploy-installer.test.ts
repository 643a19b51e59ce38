// scripts/install-cuda.sh: the version pairing, the integrity check, the copy, and the report of
// CUDA libraries. Runs the real script against a scratch onnxruntime-node package whose
// libonnxruntime.so.1 is the real one; the provider packages are built here with the exact
// layout of the npm package (only the 230 MB library is replaced by a small file carrying the
// embedded version string the script reads), so no download is needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ortBinaryDir } from '../engine/device-check.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/install-cuda.sh', import.meta.url));
const PROVIDER = 'com.github.asus4.onnxruntime.linux-x64-gpu';
const LIBS = ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcurand.so.10', 'libcuda.so.1'];
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

const scratchDirs: string[] = [];
process.once('exit', () => scratchDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'dlm-install-cuda-'));
  scratchDirs.push(d);
  return d;
}

/** An onnxruntime-node package folder; by default its library is the real 1.29.0 one. */
function ortPackage(version = '1.29.0', library?: Buffer): string {
  const pkg = join(scratch(), 'onnxruntime-node');
  const bin = join(pkg, 'bin', 'napi-v6', 'linux', 'x64');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version }, null, 2));
  if (library) writeFileSync(join(bin, 'libonnxruntime.so.1'), library);
  else symlinkSync(join(ortBinaryDir(), 'libonnxruntime.so.1'), join(bin, 'libonnxruntime.so.1'));
  return pkg;
}

/** A file shaped like a shared library as far as the version scan goes: NUL-separated strings. */
function fakeLibrary(...strings: string[]): Buffer {
  return Buffer.from(['\x7fELF', ...strings, 'end'].join('\0'), 'latin1');
}

function providerPackage(version = '0.4.9', builtFor = '1.29.0', name = PROVIDER): string {
  const dir = join(scratch(), 'package');
  const libdir = join(dir, 'Plugins', 'Linux', 'x64');
  mkdirSync(libdir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version }, null, 2));
  writeFileSync(join(libdir, 'libonnxruntime_providers_cuda.so'), fakeLibrary('onnxruntime', builtFor, 'cuda'));
  writeFileSync(join(libdir, 'libonnxruntime_providers_shared.so'), fakeLibrary('shared'));
  return dir;
}

function libDir(names: string[]): string {
  const dir = scratch();
  for (const n of names) writeFileSync(join(dir, n), fakeLibrary(n));
  return dir;
}

function run(args: string[], env: Record<string, string> = {}): { status: number | null; out: string; err: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const empty = (): Record<string, string> => {
  const nothing = scratch();
  return { DLM_CUDA_LOADER_DIRS: nothing, DLM_CUDA_EXTRA_DIRS: nothing };
};

test('a provider of another version is refused and nothing is copied', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const ort = ortPackage();
  const r = run(['--ort-package', ort, '--from', providerPackage('0.4.8')], empty());
  assert.equal(r.status, 1, r.out + r.err);
  assert.match(r.err, /com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.8 does not match onnxruntime-node 1\.29\.0, which needs 0\.4\.9/);
  assert.ok(!existsSync(join(ort, 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so')));
});

test('a provider library built for another ONNX Runtime is refused', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const r = run(['--ort-package', ortPackage(), '--from', providerPackage('0.4.9', '1.28.0')], empty());
  assert.equal(r.status, 1, r.out + r.err);
  assert.match(r.err, /was not built for ONNX Runtime 1\.29\.0 \(found: 1\.28\.0/);
});

test('a package that is not the provider is refused', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const r = run(['--ort-package', ortPackage(), '--from', providerPackage('0.4.9', '1.29.0', 'some-other-package')], empty());
  assert.equal(r.status, 1);
  assert.match(r.err, /package is 'some-other-package', expected com\.github\.asus4/);
});

test('an onnxruntime-node without a known provider, or whose library disagrees with its manifest, is refused', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const newer = run(['--ort-package', ortPackage('1.30.0', fakeLibrary('VERS_1.30.0', '1.30.0')), '--check'], empty());
  assert.equal(newer.status, 1);
  assert.match(newer.err, /onnxruntime-node 1\.30\.0 has no known CUDA provider on npm; known: 1\.29\.0/);
  const lying = run(['--ort-package', ortPackage('1.29.0', fakeLibrary('VERS_1.28.0')), '--check'], empty());
  assert.equal(lying.status, 1);
  assert.match(lying.err, /package\.json says 1\.29\.0 but libonnxruntime\.so\.1 does not carry that version/);
});

test('a tarball that is not the published one fails the integrity check', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const provider = providerPackage();
  const tgz = join(scratch(), 'provider.tgz');
  const tar = spawnSync('tar', ['-czf', tgz, '-C', join(provider, '..'), 'package']);
  assert.equal(tar.status, 0);
  const r = run(['--ort-package', ortPackage(), '--from', tgz, '--cache', scratch()], empty());
  assert.equal(r.status, 1);
  assert.match(r.err, /integrity sha512-.* is not the published com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9/);
});

test('installs beside libonnxruntime.so.1, lists every missing CUDA library, and a second run changes nothing', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const ort = ortPackage();
  const provider = providerPackage();
  const r = run(['--ort-package', ort, '--from', provider], empty());
  assert.equal(r.status, 3, r.out + r.err);
  const bin = join(ort, 'bin/napi-v6/linux/x64');
  for (const f of ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']) {
    assert.deepEqual(readFileSync(join(bin, f)), readFileSync(join(provider, 'Plugins/Linux/x64', f)));
  }
  assert.match(r.out, /installed the CUDA provider into/);
  for (const lib of LIBS) assert.match(r.out, new RegExp(`MISSING  ${lib.replace(/\./g, '\\.')}`));
  assert.match(r.out, /missing for --device cuda: libcudart\.so\.13 libcublas\.so\.13 libcublasLt\.so\.13 libcurand\.so\.10 libcuda\.so\.1/);
  const again = run(['--ort-package', ort, '--from', provider], empty());
  assert.equal(again.status, 3);
  assert.match(again.out, /already installed/);
});

test('--check: ready when the libraries are on the loader path, exit 3 with the export line when they are off it', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const ort = ortPackage();
  assert.equal(run(['--ort-package', ort, '--from', providerPackage(), '--skip-lib-check']).status, 0);
  const libs = libDir(LIBS);
  const onPath = run(['--ort-package', ort, '--check'], { DLM_CUDA_LOADER_DIRS: libs, DLM_CUDA_EXTRA_DIRS: scratch() });
  assert.equal(onPath.status, 0, onPath.out + onPath.err);
  assert.match(onPath.out, /ready: --device cuda can load its libraries/);

  const offPath = run(['--ort-package', ort, '--check'], { DLM_CUDA_LOADER_DIRS: scratch(), DLM_CUDA_EXTRA_DIRS: libs });
  assert.equal(offPath.status, 3);
  assert.match(offPath.out, /off-path libcublas\.so\.13/);
  const env = run(['--ort-package', ort, '--print-env'], { DLM_CUDA_LOADER_DIRS: scratch(), DLM_CUDA_EXTRA_DIRS: libs });
  assert.equal(env.status, 0);
  assert.equal(env.out.trim(), `export LD_LIBRARY_PATH=${libs}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`);
});

test('--check without the provider says so and changes nothing', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const ort = ortPackage();
  const r = run(['--ort-package', ort, '--check'], { DLM_CUDA_LOADER_DIRS: libDir(LIBS), DLM_CUDA_EXTRA_DIRS: scratch() });
  assert.equal(r.status, 4);
  assert.match(r.out, /CUDA provider NOT installed: missing libonnxruntime_providers_cuda\.so/);
  assert.ok(!existsSync(join(ort, 'bin/napi-v6/linux/x64/dlm-cuda-provider.txt')));
});

test('unknown arguments are errors', () => {
  const r = run(['--frobnicate']);
  assert.equal(r.status, 1);
  assert.match(r.err, /unknown argument '--frobnicate'/);
});

test('a second install without --from finds the provider in place and downloads nothing', { skip: !linuxX64 && 'linux/x64 only' }, () => {
  const ort = ortPackage();
  assert.equal(run(['--ort-package', ort, '--from', providerPackage(), '--skip-lib-check']).status, 0);
  // npm offline with an empty cache: any download attempt would fail the run.
  const offline = { npm_config_offline: 'true', npm_config_cache: scratch() };
  const r = run(['--ort-package', ort, '--cache', scratch(), '--skip-lib-check'], offline);
  assert.equal(r.status, 0, r.out + r.err);
  assert.match(r.out, /the CUDA provider is already installed/);
  assert.doesNotMatch(r.out, /downloading/);
});
