// Why a device cannot run: the words a user needs when `--device cuda|webgpu` fails.
// ONNX Runtime reports a provider that will not load as "Failed to load shared library" and
// prints the real cause (which .so is missing) only to its own log. The engine must fail
// loudly and never fall back to the CPU, so on failure it asks this file what exactly is
// wrong: the provider files, each CUDA library, the driver, the Vulkan loader and drivers.
// Probing loads libraries into the process, so it runs only on the failure path.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import type { Device } from './api.js';

export interface DeviceDiagnosis {
  device: Device;
  /** False when something the device needs is missing; `problems` then says what. */
  ok: boolean;
  /** One sentence per missing piece, each naming the file or package and the fix. */
  problems: string[];
  /** What was found, for the log. */
  found: string[];
}

export interface DiagnoseOptions {
  /** onnxruntime-node's binary folder (default: the installed package's linux/x64 folder). */
  ortBinaryDir?: string;
  /** Vulkan loader to probe for WebGPU (default libvulkan.so.1). */
  vulkanLibrary?: string;
  /** Folders holding Vulkan driver manifests (default: the loader's standard folders). */
  vulkanIcdDirs?: string[];
}

/** A device that cannot run here; the message says why and how to fix it. */
export class DeviceUnavailableError extends Error {
  readonly code = 'device_unavailable';
  constructor(
    readonly device: Device,
    readonly problems: string[],
    /** What ONNX Runtime itself said, when it was asked. */
    readonly ortMessage?: string,
  ) {
    super(
      `--device ${device} is not usable here: ${problems.join('; ')}` +
        (ortMessage ? ` (ONNX Runtime: ${ortMessage.trim().split('\n')[0]})` : ''),
    );
    this.name = 'DeviceUnavailableError';
  }
}

/** The CUDA libraries the npm CUDA provider (ORT 1.29, CUDA 13) links against, and what they are. */
export const CUDA_LIBRARIES: ReadonlyArray<{ soname: string; what: string }> = [
  { soname: 'libcudart.so.13', what: 'CUDA 13 runtime (cudart)' },
  { soname: 'libcublas.so.13', what: 'CUDA 13 cuBLAS' },
  { soname: 'libcublasLt.so.13', what: 'CUDA 13 cuBLASLt' },
  { soname: 'libcurand.so.10', what: 'CUDA 13 cuRAND' },
  { soname: 'libcuda.so.1', what: 'the NVIDIA driver' },
];

export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/** onnxruntime-node's folder of native binaries for this platform. */
export function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  // The package's main file sits in dist/; its binaries in bin/napi-v6/<platform>/<arch>.
  const pkgDir = dirname(dirname(require.resolve('onnxruntime-node')));
  return join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
}

export type LoadProbe = { loaded: true } | { loaded: false; missing?: string; message: string };

/**
 * Ask the system loader for a shared library, as ONNX Runtime would (same search path).
 * A plain library is not a Node addon, so success shows up as "did not self-register".
 */
export function probeSharedLibrary(nameOrPath: string): LoadProbe {
  const module = { exports: {} };
  try {
    process.dlopen(module, nameOrPath, constants.dlopen.RTLD_LAZY);
    return { loaded: true };
  } catch (err) {
    const message = (err as Error).message;
    if (message.includes('did not self-register')) return { loaded: true };
    return { loaded: false, missing: missingLibraryIn(message), message };
  }
}

/** The library a dlopen error names as missing ("libX.so.N: cannot open shared object file"). */
export function missingLibraryIn(message: string): string | undefined {
  const m = /([^\s/:'"]+\.so(?:\.[0-9]+)*): cannot open shared object file/.exec(message);
  return m?.[1];
}

function nvidiaGpuVisible(): boolean {
  return existsSync('/dev/nvidiactl') || existsSync('/proc/driver/nvidia/version');
}

function diagnoseCuda(opts: DiagnoseOptions): DeviceDiagnosis {
  const problems: string[] = [];
  const found: string[] = [];
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    problems.push(`the CUDA provider for onnxruntime-node is published for linux/x64 only (this is ${process.platform}/${process.arch})`);
    return { device: 'cuda', ok: false, problems, found };
  }
  const dir = opts.ortBinaryDir ?? ortBinaryDir();
  const absent = CUDA_PROVIDER_FILES.filter((f) => !existsSync(join(dir, f)));
  if (absent.length > 0) {
    problems.push(`ONNX Runtime's CUDA provider is not installed (${absent.join(', ')} missing in ${dir}); run: bash scripts/install-cuda.sh`);
  } else {
    found.push(`CUDA provider in ${dir}`);
    const probe = probeSharedLibrary(join(dir, 'libonnxruntime_providers_cuda.so'));
    if (!probe.loaded && !probe.missing) problems.push(`libonnxruntime_providers_cuda.so does not load: ${probe.message}`);
  }
  // Every library, not only the first the loader tripped on, so one run lists all that is missing.
  const missing: string[] = [];
  let driverMissing = false;
  for (const lib of CUDA_LIBRARIES) {
    if (probeSharedLibrary(lib.soname).loaded) found.push(lib.soname);
    else if (lib.soname === 'libcuda.so.1') driverMissing = true;
    else missing.push(`${lib.soname} (${lib.what})`);
  }
  if (missing.length > 0) {
    problems.push(`CUDA 13 libraries are missing from the library path: ${missing.join(', ')}; bash scripts/install-cuda.sh --check says where they were looked for and how to install them`);
  }
  if (driverMissing) problems.push('libcuda.so.1 (the NVIDIA driver) is not on the library path');
  if (!nvidiaGpuVisible()) problems.push('no NVIDIA GPU is visible (/dev/nvidiactl is absent)');
  return { device: 'cuda', ok: problems.length === 0, problems, found };
}

const DEFAULT_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

function diagnoseWebgpu(opts: DiagnoseOptions): DeviceDiagnosis {
  const problems: string[] = [];
  const found: string[] = [];
  // Dawn uses Metal on macOS and D3D12 on Windows: nothing to look for there but the adapter.
  if (process.platform !== 'linux') return { device: 'webgpu', ok: true, problems, found };
  const loader = opts.vulkanLibrary ?? 'libvulkan.so.1';
  const probe = probeSharedLibrary(loader);
  if (!probe.loaded) {
    problems.push(`WebGPU on Linux runs on Vulkan, and the Vulkan loader ${loader} is not on the library path (Debian/Ubuntu: apt install libvulkan1)`);
  } else {
    found.push(loader);
  }
  const fromEnv = (process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES ?? '').split(':').filter(Boolean);
  const icds = [...fromEnv.filter((f) => existsSync(f))];
  for (const d of opts.vulkanIcdDirs ?? DEFAULT_ICD_DIRS) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) if (f.endsWith('.json')) icds.push(join(d, f));
  }
  if (icds.length === 0) {
    problems.push('no Vulkan driver is installed (no ICD manifest in /usr/share/vulkan/icd.d or VK_DRIVER_FILES); install the GPU vendor\'s Vulkan driver (NVIDIA: the driver\'s nvidia_icd.json)');
  } else {
    found.push(...icds);
  }
  return { device: 'webgpu', ok: problems.length === 0, problems, found };
}

/** What a device needs that this machine lacks. Loads libraries: call it when a device failed. */
export function diagnoseDevice(device: Device, opts: DiagnoseOptions = {}): DeviceDiagnosis {
  switch (device) {
    case 'cpu':
      return { device, ok: true, problems: [], found: [] };
    case 'cuda':
      return diagnoseCuda(opts);
    case 'webgpu':
      return diagnoseWebgpu(opts);
  }
}

/**
 * Turn ONNX Runtime's failure to start a device into an error that says which piece is missing.
 * When nothing is found missing, ONNX Runtime's own message is the best there is, and the
 * WebGPU adapter case gets its own words (a Vulkan device Dawn does not accept).
 */
export function deviceUnavailable(device: Device, cause: unknown, opts: DiagnoseOptions = {}): DeviceUnavailableError {
  const ortMessage = cause instanceof Error ? cause.message : String(cause);
  const diagnosis = diagnoseDevice(device, opts);
  const problems = [...diagnosis.problems];
  if (problems.length === 0) {
    if (device === 'webgpu' && /adapter/i.test(ortMessage)) {
      problems.push('the Vulkan loader and a driver are present, but Dawn found no GPU adapter it supports (software drivers such as older lavapipe lack required features)');
    } else {
      problems.push(`ONNX Runtime could not start the ${device} execution provider`);
    }
  }
  return new DeviceUnavailableError(device, problems, ortMessage);
}
