// The CPU image built for real without a Docker engine or a registry: buildah (vfs storage,
// chroot isolation) lays the edge bundle on a minimal base made here, and configures it from
// the final stage of deploy/Dockerfile.cpu itself (ENV, WORKDIR, COPY of the bundle, USER,
// EXPOSE, HEALTHCHECK, CMD), so the image that tests run is the one that file describes.
// node:20-bookworm-slim cannot be pulled here; the base stands in for it with the same Node
// (this machine's) at the same path and the shared libraries that Node and the bundle's addons
// link against (ldd), plus the files ONNX Runtime reads at start.
//   node dist/scripts/image-cpu.js --bundle build/dlm-serve-linux-x64 --tag dlm-serve:cpu [--root DIR]
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DOCKERFILE = 'deploy/Dockerfile.cpu';

/** Where buildah keeps its images: a private root keeps tests off the machine's own store. */
export interface Storage {
  root?: string;
  runroot?: string;
}

export function buildah(storage: Storage, args: string[], opts: { quiet?: boolean } = {}): string {
  const global = ['--storage-driver', 'vfs', ...(storage.root ? ['--root', storage.root] : []), ...(storage.runroot ? ['--runroot', storage.runroot] : [])];
  return execFileSync('buildah', [...global, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', opts.quiet ? 'pipe' : 'inherit'], maxBuffer: 64 * 1024 * 1024 }).trim();
}

export function hasBuildah(): boolean {
  try {
    execFileSync('buildah', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The final stage of a Dockerfile, instruction by instruction. */
export function finalStage(path: string): Instruction[] {
  const all = DockerfileParser.parse(readFileSync(join(ROOT, path), 'utf8')).getInstructions();
  const from = all.map((i) => i.getKeyword()).lastIndexOf('FROM');
  return all.slice(from + 1);
}

const args = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue());

function nativeFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => /\.(node|so(\.\d+)*)$/.test(f) && statSync(join(dir, f)).isFile()).map((f) => join(dir, f));
}

/** The shared libraries the given ELF files load, as this machine's loader resolves them. */
function libraryClosure(files: string[]): string[] {
  const libs = new Set<string>();
  for (const f of files) {
    for (const m of execFileSync('ldd', [f], { encoding: 'utf8' }).matchAll(/(\/\S+\.so[^\s:]*)/g)) {
      if (!m[1]!.startsWith(dirname(f))) libs.add(m[1]!);
    }
  }
  return [...libs];
}

function makeBase(mnt: string, bundle: string): void {
  mkdirSync(join(mnt, 'usr/local/bin'), { recursive: true });
  cpSync(process.execPath, join(mnt, 'usr/local/bin/node'));
  for (const lib of libraryClosure([process.execPath, ...nativeFiles(bundle)])) {
    mkdirSync(join(mnt, dirname(lib)), { recursive: true });
    cpSync(lib, join(mnt, lib), { dereference: true });
  }
  for (const d of ['tmp', 'etc']) mkdirSync(join(mnt, d), { recursive: true });
  chmodSync(join(mnt, 'tmp'), 0o1777);
  // ONNX Runtime 1.29 derives a device id from /etc/machine-id, and without it runs a shell
  // (`blkid; hostname`); with neither it crashes. Every distribution image has the file.
  writeFileSync(join(mnt, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
  writeFileSync(join(mnt, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000::/home/node:/sbin/nologin\n');
  writeFileSync(join(mnt, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
}

/** Builds `tag` from the bundle folder; returns the image id. */
export function buildCpuImage(bundle: string, tag: string, storage: Storage = {}): string {
  if (!existsSync(join(bundle, 'bin/dlm-serve'))) throw new Error(`${bundle} is not a bundle (npm run bundle)`);
  // The docker format keeps HEALTHCHECK (OCI image configs have no field for it).
  const ctr = buildah(storage, ['from', '--quiet', '--format', 'docker', 'scratch']);
  try {
    const mnt = buildah(storage, ['mount', ctr]);
    if (!mnt || !statSync(mnt).isDirectory()) throw new Error(`buildah mount gave no folder ('${mnt}')`);
    makeBase(mnt, bundle);
    const config: string[] = ['--env', 'PATH=/usr/local/bin:/usr/bin:/bin'];
    let workdir = '/';
    for (const ins of finalStage(DOCKERFILE)) {
      const kw = ins.getKeyword();
      const a = args(ins);
      switch (kw) {
        case 'ENV':
          for (const p of (ins as unknown as { getProperties(): Array<{ getName(): string; getValue(): string | null }> }).getProperties()) {
            config.push('--env', `${p.getName()}=${p.getValue() ?? ''}`);
          }
          break;
        case 'WORKDIR':
          workdir = resolve(workdir, a[0]!);
          config.push('--workingdir', workdir);
          break;
        case 'COPY': {
          // The only thing the final stage takes from the build stage is the bundle.
          const paths = a.filter((x) => !x.startsWith('--'));
          const from = (ins as unknown as { getFromFlag(): { getValue(): string | null } | null }).getFromFlag();
          if (!from || paths.length !== 2) throw new Error(`${DOCKERFILE}: unexpected final-stage COPY ${a.join(' ')}`);
          const dest = join(mnt, resolve(workdir, paths[1]!));
          mkdirSync(dest, { recursive: true });
          cpSync(bundle, dest, { recursive: true });
          break;
        }
        case 'USER':
          config.push('--user', a[0]!);
          break;
        case 'EXPOSE':
          for (const p of a) config.push('--port', p);
          break;
        case 'HEALTHCHECK': {
          const flags = (ins as unknown as { getFlags(): Array<{ getName(): string; getValue(): string | null }> }).getFlags();
          for (const f of flags) config.push(`--healthcheck-${f.getName()}`, f.getValue() ?? '');
          // buildah reads the command as shell words: quote each of the exec form's arguments.
          const exec = /^CMD\s+(\[.*\])$/s.exec(ins.getArgumentsContent() ?? '');
          const words = exec ? (JSON.parse(exec[1]!) as string[]) : [];
          if (words.length === 0) throw new Error(`${DOCKERFILE}: HEALTHCHECK must use the exec form, CMD ["..."]`);
          config.push('--healthcheck', `CMD ${words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(' ')}`);
          break;
        }
        case 'CMD':
          config.push('--cmd', ins.getArgumentsContent()!);
          break;
        default:
          throw new Error(`${DOCKERFILE}: the final stage's ${kw} is not applied by this builder; teach it`);
      }
    }
    buildah(storage, ['config', ...config, ctr]);
    return buildah(storage, ['commit', '--quiet', '--format', 'docker', '--rm', ctr, tag]);
  } catch (err) {
    try { buildah(storage, ['rm', ctr], { quiet: true }); } catch { /* already gone */ }
    throw err;
  }
}

function main(): void {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, tag: { type: 'string' }, root: { type: 'string' }, runroot: { type: 'string' } } });
  const bundle = resolve(values.bundle ?? join(ROOT, 'build', `dlm-serve-${process.platform}-${process.arch}`));
  const t0 = performance.now();
  const id = buildCpuImage(bundle, values.tag ?? 'dlm-serve:cpu', { ...(values.root ? { root: values.root } : {}), ...(values.runroot ? { runroot: values.runroot } : {}) });
  process.stdout.write(`${values.tag ?? 'dlm-serve:cpu'} ${id.slice(0, 12)} built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
