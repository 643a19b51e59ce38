// Which file of each graph a session opens: the manifest's fp32 graph or one of its variants
// (docs/model-format.md). Decided once, before any session starts, by a pure function of
// (model directory, asked precision, device) that the server calls at start so that a model
// without the asked variant is refused with a clear message instead of an engine crash.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Device } from './api.js';
import { ManifestError, REQUIRED_GRAPHS, type ModelDir, type Precision, type PrecisionChoice } from './manifest.js';


export interface PrecisionPick {
  precision: Precision;
  /** Role -> the ONNX file to open at that precision. */
  graphPaths: Record<string, string>;
  /** Role -> source sha256, for variants that derive their weights from the fp32 file. */
  derivedFrom: Record<string, string>;
}

export class PrecisionError extends Error {
  readonly code = 'precision_unavailable';
  constructor(message: string) {
    super(message);
    this.name = 'PrecisionError';
  }
}

// The int8 variants run com.microsoft.DynamicQuantizeMatMul / MatMulNBits, which ONNX Runtime
// implements for the CPU provider only: on a GPU provider they would be placed on the CPU
// with a host-device copy per layer, which is slower than the GPU's fp32, not faster.
const INT8_DEVICES: readonly Device[] = ['cpu'];

const sha256Cache = new Map<string, string>();
function sha256Of(path: string): string {
  let h = sha256Cache.get(path);
  if (h === undefined) {
    h = createHash('sha256').update(readFileSync(path)).digest('hex');
    sha256Cache.set(path, h);
  }
  return h;
}

/** Resolve `auto` and check that every graph has the asked variant, valid beside its source. */
export function pickPrecision(dir: ModelDir, choice: PrecisionChoice, device: Device): PrecisionPick {
  const m = dir.manifest;
  const precision: Precision = choice === 'auto' ? (m.default_precision[device] ?? 'fp32') : choice;
  if (precision === 'fp32') return { precision, graphPaths: { ...dir.graphPaths }, derivedFrom: {} };
  if (!INT8_DEVICES.includes(device)) {
    throw new PrecisionError(`--precision ${precision}: the ${precision} graphs use ONNX Runtime operators that only the CPU provider implements; on --device ${device} serve --precision fp32`);
  }
  const graphPaths: Record<string, string> = {};
  const derivedFrom: Record<string, string> = {};
  // Only the graphs the family runs (the engine opens no others): an extra role such as MDLM's
  // denoiser_kv needs no variant for the model to serve at this precision.
  for (const role of REQUIRED_GRAPHS[m.family]) {
    const g = m.graphs[role]!;
    const variant = g.variants[precision];
    const path = dir.variantPaths[role]?.[precision];
    if (!variant || !path) {
      throw new PrecisionError(`--precision ${precision}: model ${m.name} has no ${precision} variant of its '${role}' graph (model.json graphs.${role}.variants.${precision}); write one with \`python3 -m dlm.quantize\` (models/) or serve --precision fp32`);
    }
    if (variant.source_sha256 !== undefined && sha256Of(dir.graphPaths[role]!) !== variant.source_sha256) {
      throw new ManifestError(`model.json: graphs.${role}.variants.${precision}: ${variant.file} was derived from another ${g.file} (sha256 differs); rerun models/dlm/quantize.py on this one`, `graphs.${role}.variants.${precision}.source_sha256`);
    }
    graphPaths[role] = path;
    if (variant.source_sha256 !== undefined) derivedFrom[role] = variant.source_sha256;
  }
  return { precision, graphPaths, derivedFrom };
}
