// The model directory contract (DESIGN.md section 3, docs/model-format.md).
// The engine learns everything about a model from model.json: adding a model never needs
// engine code, adding a family does. The Python exporter (models/dlm/manifest.py) writes
// exactly this shape; a test round-trips it.
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
// A namespace import, so that a bundler keeps only the parts used (zod's root also exports z).
import * as z from 'zod';
import { PRECISIONS, type Precision } from './precisions.js';
import { KV_CACHE_MODES } from './kv-cache-modes.js';

export const MANIFEST_FORMAT = 'dlm-serve.model/1';

export const FAMILIES = ['mdlm', 'duo', 'bd3lm', 'e2d2', 'asarm', 'ar'] as const;
export type Family = (typeof FAMILIES)[number];

/** Graph roles each family needs; the engine refuses a manifest that lacks one. */
export const REQUIRED_GRAPHS: Record<Family, readonly string[]> = {
  mdlm: ['denoiser'],
  duo: ['denoiser'],
  bd3lm: ['block'],
  e2d2: ['encoder', 'decoder'],
  asarm: ['asarm'],
  ar: ['lm'],
};

const tokenId = z.number().int().nonnegative();

export { PRECISIONS, PRECISION_CHOICES, type Precision, type PrecisionChoice } from './precisions.js';

/** Another file of the same graph (same inputs and outputs) at another precision. */
const VariantSchema = z.object({
  /** ONNX file, relative to the model directory (models/dlm/quantize.py writes it). */
  file: z.string().min(1),
  /**
   * sha256 of the `file` of the graph it was derived from, when it reads that file's weights
   * (quantize.py --weights derive): it is only valid beside that exact file.
   */
  source_sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** How it was made, for people (tool and flags). */
  method: z.string().optional(),
});

const GraphSchema = z.object({
  /** ONNX file, relative to the model directory. */
  file: z.string().min(1),
  /** Input names in the graph, from the stable set in docs/model-format.md. */
  inputs: z.array(z.string().min(1)).min(1),
  /** Output names in the graph. */
  outputs: z.array(z.string().min(1)).min(1),
  /** What `file` computes in (fp16 storage still computes in fp32). */
  precision: z.literal('fp32').default('fp32'),
  /** The same graph at other precisions, keyed by precision. */
  variants: z.object({ int8: VariantSchema }).partial().strict().default({}),
  /**
   * The graph's large weights are ONNX external data inside another file of the directory
   * (models/dlm/export_kv.py points them into denoiser.onnx), pinned to that file's sha256.
   */
  weights_from: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});

const ArchitectureSchema = z
  .object({
    d_model: z.number().int().positive(),
    n_layers: z.number().int().positive(),
    n_heads: z.number().int().positive(),
    head_dim: z.number().int().positive(),
    /** Key/value heads when fewer than n_heads (grouped-query attention): the K/V caches' head axis. */
    n_kv_heads: z.number().int().positive().optional(),
    /** Parameters, for cards and FLOP/s accounting. */
    n_params: z.number().int().positive().optional(),
  })
  // Families add their own sizes (cond_dim, encoder/decoder layer split, ...).
  .catchall(z.unknown());

const NoiseSchema = z.object({
  /** masked: absorbing [MASK] state (MDLM, BD3-LM, E2D2); uniform: uniform prior (Duo). */
  type: z.enum(['masked', 'uniform']),
  schedule: z.enum(['loglinear']),
  /** Smallest noise level the schedule reaches, as in MDLM's LogLinearNoise(eps). */
  eps: z.number().nonnegative().default(1e-3),
});

const DefaultsSchema = z
  .object({
    sampler: z.string(),
    steps: z.number().int().positive(),
    temperature: z.number().nonnegative(),
    top_p: z.number().gt(0).lte(1),
    top_k: z.number().int().nonnegative(),
    block_size: z.number().int().positive(),
    max_tokens: z.number().int().positive(),
    speculative_k: z.number().int().positive(),
    /** BD3-LM's entropy rule (engine/entropy-stop.ts): threshold in nats (0: off) and window. */
    min_entropy: z.number().nonnegative(),
    entropy_window: z.number().int().min(2),
    /** MDLM with a denoiser_kv graph: the K/V cache mode, refresh period and sub-block a request gets by default. */
    kv_cache: z.enum(KV_CACHE_MODES),
    cache_refresh: z.number().int().positive(),
    cache_block: z.number().int().positive(),
  })
  .partial()
  .catchall(z.unknown());

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  name: z.string().min(1),
  family: z.enum(FAMILIES),
  description: z.string().optional(),
  tokenizer: z.string().min(1).default('tokenizer.json'),
  /** Size of the logits' last axis (tokenizer vocabulary plus any extra ids such as [MASK]). */
  vocab_size: z.number().int().positive(),
  /** Longest sequence (prompt + canvas) the network was trained on; positions beyond it are never fed. */
  max_length: z.number().int().positive(),
  special_tokens: z.object({
    mask: tokenId.nullable().default(null),
    bos: tokenId.nullable().default(null),
    eos: tokenId.nullable().default(null),
    pad: tokenId.nullable().default(null),
  }),
  architecture: ArchitectureSchema,
  /** Whether the network reads sigma (Duo does; released MDLM and BD3-LM zero it). */
  time_conditioning: z.boolean().default(false),
  noise: NoiseSchema.optional(),
  /** LDDM: the graph takes latent_in and returns latent_out, [B, L, latent_dim]. */
  loopholing: z.object({ latent_dim: z.number().int().positive() }).optional(),
  /** Block families: the block size trained, and the sizes a request may pick. */
  block: z
    .object({
      size: z.number().int().positive(),
      sizes: z.array(z.number().int().positive()).min(1),
    })
    .optional(),
  graphs: z.record(z.string(), GraphSchema),
  /** The precision served per device when the user does not pick one (absent: fp32). */
  default_precision: z.object({ cpu: z.enum(PRECISIONS), cuda: z.enum(PRECISIONS), webgpu: z.enum(PRECISIONS) }).partial().default({}),
  /** Sampler names this model supports; the first is the default unless defaults.sampler says otherwise. */
  samplers: z.array(z.string().min(1)).min(1),
  defaults: DefaultsSchema.default({}),
  /**
   * Chat template: a string with {{role}} / {{content}} per message, see tokenizer/chat.ts.
   * Absent: the default template there.
   */
  chat_template: z
    .object({
      message: z.string(),
      generation_prompt: z.string(),
      separator: z.string().default(''),
    })
    .optional(),
  /** Where the weights came from: training run, conversion, card. Free-form, for people. */
  provenance: z.record(z.string(), z.unknown()).optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type GraphSpec = z.infer<typeof GraphSchema>;

export class ManifestError extends Error {
  constructor(
    message: string,
    /** Dotted path of the offending field, when one field is to blame. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** A validated manifest plus the absolute paths the engine and server open. */
export interface ModelDir {
  dir: string;
  manifest: Manifest;
  tokenizerPath: string;
  graphPaths: Record<string, string>;
  /** Per graph role and precision other than fp32: the variant files that exist. */
  variantPaths: Record<string, Partial<Record<Precision, string>>>;
}

/** Validate parsed JSON as a manifest; throws ManifestError naming the first bad field. */
export function parseManifest(json: unknown): Manifest {
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    throw new ManifestError(`model.json: ${field || '(root)'}: ${issue.message}`, field || undefined);
  }
  const m = parsed.data;
  for (const role of REQUIRED_GRAPHS[m.family]) {
    if (!m.graphs[role]) {
      throw new ManifestError(`model.json: graphs.${role}: family ${m.family} needs a '${role}' graph`, `graphs.${role}`);
    }
  }
  const needsNoise = m.family === 'mdlm' || m.family === 'duo' || m.family === 'bd3lm' || m.family === 'e2d2';
  if (needsNoise && !m.noise) {
    throw new ManifestError(`model.json: noise: family ${m.family} needs a noise schedule`, 'noise');
  }
  if (m.noise?.type === 'masked' && m.special_tokens.mask === null) {
    throw new ManifestError('model.json: special_tokens.mask: masked diffusion needs a [MASK] id', 'special_tokens.mask');
  }
  if ((m.family === 'bd3lm' || m.family === 'e2d2') && !m.block) {
    throw new ManifestError(`model.json: block: family ${m.family} needs block sizes`, 'block');
  }
  if (m.loopholing) checkLoopholing(m);
  const kv = m.architecture.n_kv_heads;
  if (kv !== undefined && m.architecture.n_heads % kv !== 0) {
    throw new ManifestError(`model.json: architecture.n_kv_heads: ${kv} does not divide n_heads ${m.architecture.n_heads}`, 'architecture.n_kv_heads');
  }
  for (const [name, id] of Object.entries(m.special_tokens)) {
    if (id !== null && id >= m.vocab_size) {
      throw new ManifestError(`model.json: special_tokens.${name}: id ${id} is outside vocab_size ${m.vocab_size}`, `special_tokens.${name}`);
    }
  }
  return m;
}

/**
 * A loopholing model (LDDM-M on mdlm, LDDM-U on duo) whose denoiser did not take and return the
 * latent would be served as its base model with the latent silently dropped, or fail at its
 * first call: refuse it at load, naming the field.
 */
function checkLoopholing(m: Manifest): void {
  if (m.family !== 'mdlm' && m.family !== 'duo') {
    throw new ManifestError(`model.json: loopholing: family ${m.family} does not carry a latent (mdlm and duo do)`, 'loopholing');
  }
  const g = m.graphs.denoiser!;
  if (!g.inputs.includes('latent_in')) throw new ManifestError('model.json: graphs.denoiser.inputs: a loopholing model\'s denoiser takes latent_in', 'graphs.denoiser.inputs');
  if (!g.outputs.includes('latent_out')) throw new ManifestError('model.json: graphs.denoiser.outputs: a loopholing model\'s denoiser returns latent_out', 'graphs.denoiser.outputs');
}

/**
 * A graph whose weights point at offsets inside another file would compute with garbage once
 * that file is replaced (new weights): refuse it and say how to rebuild it.
 */
export function checkWeightsFrom(dir: string, role: string, from: { file: string; sha256: string }): void {
  const p = join(dir, from.file);
  const field = `graphs.${role}.weights_from`;
  if (!existsSync(p)) throw new ManifestError(`model.json: ${field}.file: ${p} does not exist`, `${field}.file`);
  const sha = createHash('sha256').update(readFileSync(p)).digest('hex');
  if (sha !== from.sha256) {
    throw new ManifestError(
      `model.json: ${field}.sha256: ${from.file} changed since ${role} was exported; rebuild it (cd models && python3 -m dlm.export_kv --model ${dir})`,
      `${field}.sha256`,
    );
  }
}

/**
 * Read and validate DIR/model.json and check that every file it names is there. `served`: check
 * the weight pins (a sha256 of the whole source file) of the graphs the family runs only, for a
 * process about to serve: hashing the default's 31.6 MB denoiser.onnx for a graph no engine
 * opens yet (denoiser_kv) would sit on every cold start's critical path.
 */
export function loadModelDir(dir: string, opts: { served?: boolean } = {}): ModelDir {
  const abs = resolve(dir);
  const manifestPath = join(abs, 'model.json');
  if (!existsSync(manifestPath)) {
    throw new ManifestError(`no model.json in ${abs}: a model directory holds model.json, its .onnx graphs and tokenizer.json`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new ManifestError(`${manifestPath}: not valid JSON (${(err as Error).message})`);
  }
  const manifest = parseManifest(json);
  const tokenizerPath = join(abs, manifest.tokenizer);
  if (!existsSync(tokenizerPath)) {
    throw new ManifestError(`model.json: tokenizer: ${tokenizerPath} does not exist`, 'tokenizer');
  }
  const graphPaths: Record<string, string> = {};
  const variantPaths: ModelDir['variantPaths'] = {};
  for (const [role, g] of Object.entries(manifest.graphs)) {
    const p = join(abs, g.file);
    if (!existsSync(p)) throw new ManifestError(`model.json: graphs.${role}.file: ${p} does not exist`, `graphs.${role}.file`);
    graphPaths[role] = p;
    variantPaths[role] = {};
    for (const [precision, v] of Object.entries(g.variants) as [Precision, { file: string }][]) {
      const vp = join(abs, v.file);
      if (!existsSync(vp)) throw new ManifestError(`model.json: graphs.${role}.variants.${precision}.file: ${vp} does not exist`, `graphs.${role}.variants.${precision}.file`);
      variantPaths[role]![precision] = vp;
    }
    if (g.weights_from && (!opts.served || REQUIRED_GRAPHS[manifest.family].includes(role))) checkWeightsFrom(abs, role, g.weights_from);
  }
  return { dir: abs, manifest, tokenizerPath, graphPaths, variantPaths };
}
