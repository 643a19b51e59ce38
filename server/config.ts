// Command line and environment: every flag has an env equivalent; flags win over env.
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, type Device } from '../engine/api.js';
import { PRECISION_CHOICES, type PrecisionChoice } from '../engine/precisions.js';

/** Repository root (this file is compiled to dist/server/config.js). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The model `npm start` serves when none is named: the shipped default, which
 * default is models/zoo/default (trained on an H100; see its card).
 */
export const DEFAULT_MODEL_DIR = resolve(ROOT, 'models/zoo/default');

export { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE };
/** Seconds SIGTERM waits for work in flight (Kubernetes' default grace period is 30 s too). */
export const DEFAULT_DRAIN_SECONDS = 30;

export interface Config {
  host: string;
  port: number;
  modelDir: string;
  device: Device;
  /** fp32, int8, or auto: the model's default for the device (model.json default_precision, else fp32). */
  precision: PrecisionChoice;
  threads: number | undefined;
  apiKeys: string[];
  logLevel: string;
  /** Sequences decoded together at most (1 turns batching off). */
  maxBatch: number;
  /** Sequences waiting at most; max batch + max queue is the admission limit (then 429). */
  maxQueue: number;
  /** MiB the engine's KV / encoder cache pool may hold (block families). */
  cacheMb: number | undefined;
  /** Serve the browser chat page at /. */
  chat: boolean;
  /** Folder for ONNX Runtime's optimised graphs, reused across starts (default: the user's cache); undefined: off. */
  ortCacheDir: string | undefined;
  /** After SIGTERM / SIGINT, seconds that work in flight may take before it is ended. */
  drainSeconds: number;
}

export const USAGE = `Usage: npm start -- [options]

  --host HOST        interface to bind (HOST, default 0.0.0.0)
  --port N           port (PORT, default 8080; 0 = any free port)
  --model DIR        model directory (DLM_MODEL, default ${DEFAULT_MODEL_DIR})
  --device D         cpu | cuda | webgpu (DLM_DEVICE, default cpu)
  --precision P      fp32 | int8 | auto: which graph files to run (DLM_PRECISION, default auto:
                     the model's default for the device, fp32 where it names none)
  --threads N        ONNX Runtime intra-op threads (DLM_THREADS, default all cores)
  --api-key KEY      require this bearer key; repeat for several (DLM_API_KEYS, comma-separated)
  --max-batch N      sequences decoded together at most; 1 = no batching (DLM_MAX_BATCH, default ${DEFAULT_MAX_BATCH})
  --max-queue N      sequences waiting at most; beyond: 429 (DLM_MAX_QUEUE, default ${DEFAULT_MAX_QUEUE})
  --cache-mb N       MiB of KV cache shared by all requests: committed blocks, MDLM kv_cache (DLM_CACHE_MB, default 256)
  --drain-seconds N  on SIGTERM, let requests in flight finish for up to N s, then exit (DLM_DRAIN_SECONDS, default ${DEFAULT_DRAIN_SECONDS})
  --no-chat          do not serve the browser chat page at / (DLM_CHAT=0)
  --ort-cache DIR    keep ONNX Runtime's optimised CPU graphs here between starts
                     (DLM_ORT_CACHE, default ~/.cache/dlm-serve/ort, or under $XDG_CACHE_HOME; off: none)
  --log-level L      pino level (LOG_LEVEL, default info)
  -h, --help         this text
`;

export class ConfigError extends Error {}

function intOf(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name}: expected an integer >= ${min}, got '${v}'`);
  return n;
}

/** Where ONNX Runtime's optimised graphs are kept when no folder is named: the user's cache. */
export function defaultOrtCacheDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'dlm-serve', 'ort');
}

function ortCacheDirOf(v: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (v === undefined) return defaultOrtCacheDir(env);
  if (['', '0', 'off', 'false', 'no'].includes(v.toLowerCase())) return undefined;
  return resolve(v);
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      model: { type: 'string' },
      device: { type: 'string' },
      precision: { type: 'string' },
      threads: { type: 'string' },
      'api-key': { type: 'string', multiple: true },
      'max-batch': { type: 'string' },
      'max-queue': { type: 'string' },
      'cache-mb': { type: 'string' },
      'log-level': { type: 'string' },
      'drain-seconds': { type: 'string' },
      'no-chat': { type: 'boolean' },
      'ort-cache': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const device = values.device ?? env.DLM_DEVICE ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda' && device !== 'webgpu') {
    throw new ConfigError(`--device: expected cpu, cuda or webgpu, got '${device}'`);
  }
  const precision = values.precision ?? env.DLM_PRECISION ?? 'auto';
  if (!(PRECISION_CHOICES as readonly string[]).includes(precision)) {
    throw new ConfigError(`--precision: expected ${PRECISION_CHOICES.join(', ')}, got '${precision}'`);
  }
  const keys = values['api-key'] ?? (env.DLM_API_KEYS ?? '').split(',');
  return {
    host: values.host ?? env.HOST ?? '0.0.0.0',
    port: intOf('--port', values.port ?? env.PORT, 0) ?? 8080,
    modelDir: resolve(values.model ?? env.DLM_MODEL ?? DEFAULT_MODEL_DIR),
    device,
    precision: precision as PrecisionChoice,
    threads: intOf('--threads', values.threads ?? env.DLM_THREADS, 1),
    apiKeys: keys.map((k) => k.trim()).filter((k) => k !== ''),
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
    maxBatch: intOf('--max-batch', values['max-batch'] ?? env.DLM_MAX_BATCH, 1) ?? DEFAULT_MAX_BATCH,
    maxQueue: intOf('--max-queue', values['max-queue'] ?? env.DLM_MAX_QUEUE, 1) ?? DEFAULT_MAX_QUEUE,
    cacheMb: intOf('--cache-mb', values['cache-mb'] ?? env.DLM_CACHE_MB, 1),
    drainSeconds: intOf('--drain-seconds', values['drain-seconds'] ?? env.DLM_DRAIN_SECONDS, 0) ?? DEFAULT_DRAIN_SECONDS,
    chat: !(values['no-chat'] ?? ['0', 'false', 'off', 'no'].includes((env.DLM_CHAT ?? '').toLowerCase())),
    ortCacheDir: ortCacheDirOf(values['ort-cache'] ?? env.DLM_ORT_CACHE, env),
  };
}
