// Opening an ONNX Runtime session on the device the user asked for, and nowhere else.
// A session that cannot start its provider fails with DeviceUnavailableError naming the missing
// piece: a server asked for a GPU must never quietly serve from the CPU. (Within a GPU session
// ONNX Runtime still places the few operators a provider lacks on the CPU; that is placement,
// not fallback, and shows up as host-device copies in a profile.)
import * as ort from 'onnxruntime-node';
import type { Device } from './api.js';
import { deviceUnavailable, type DiagnoseOptions } from './device-check.js';
import { openCachedCpuSession } from './optimized-cache.js';

export interface DeviceSessionOptions {
  /** CUDA device ordinal (default 0). */
  deviceId?: number;
  /** Intra-op threads for the CPU provider. */
  threads?: number;
  /** Passed to the diagnosis on failure (tests point it at other folders). */
  diagnose?: DiagnoseOptions;
  /** Folder of ONNX Runtime's optimised graphs (CPU), reused across starts; undefined: none. */
  optimizedCacheDir?: string;
}

/** The execution providers for a device: exactly one, so a failure to start it is an error. */
export function executionProvidersFor(device: Device, opts: DeviceSessionOptions = {}): ort.InferenceSession.ExecutionProviderConfig[] {
  switch (device) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }];
    case 'webgpu':
      return ['webgpu'];
  }
}

const PROVIDER_FAILURE = /ExecutionProvider|provider|shared library|adapter|cuda|webgpu|vulkan|dawn/i;

export async function openDeviceSession(graphPath: string, device: Device, opts: DeviceSessionOptions = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProvidersFor(device, opts),
    graphOptimizationLevel: 'all',
  };
  if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;
  try {
    if (device === 'cpu' && opts.optimizedCacheDir !== undefined) return await openCachedCpuSession(graphPath, options, opts.optimizedCacheDir);
    return await ort.InferenceSession.create(graphPath, options);
  } catch (err) {
    // A broken graph fails the same way on every device: only provider failures are the device's.
    if (device === 'cpu' || !PROVIDER_FAILURE.test(String((err as Error)?.message ?? err))) throw err;
    throw deviceUnavailable(device, err, opts.diagnose);
  }
}
