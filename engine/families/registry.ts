// Which family builds a model's sequences. Each family checks the request's settings against
// the manifest (throwing EngineRequestError naming the field) and builds the Sequence the
// scheduler drives; EngineCore knows nothing family-specific. A new family is one file here
// plus one line in FAMILIES below.
import type { Manifest } from '../manifest.js';
import type { GenerationParams } from '../protocol.js';
import type { Sequence, SequenceSink } from '../sequence.js';
import { bd3lmFamily } from './bd3lm-family.js';
import { e2d2Family } from './e2d2-family.js';
import { asarmFamily } from './asarm-family.js';
import { duoFamily } from './duo-family.js';
import { mdlmFamily } from './mdlm-family.js';
import { withRemasking } from './remdm-family.js';

export interface FamilyContext {
  manifest: Manifest;
  /** Counts tokens as they commit (the engine's totals), then forwards to the server. */
  sink: SequenceSink;
  /** Bytes the family's cache pool may hold (EngineOptions.cacheBudgetBytes). */
  cacheBudgetBytes?: number;
}

export interface Family {
  /** Throws EngineRequestError for settings this model cannot take. */
  validate(params: GenerationParams, manifest: Manifest): void;
  create(id: number, prompt: number[], params: GenerationParams, ctx: FamilyContext): Sequence;
  /** Families with a cache pool: its size and budget (engine stats, /metrics). */
  cache?(manifest: Manifest, budgetBytes?: number): { bytes: number; budgetBytes: number };
  /**
   * Block by block with a sliding window (BD3-LM, E2D2): a request may write past the model's
   * context (up to BLOCKWISE_CONTEXTS contexts), and BD3-LM's variable-length rule (the entropy
   * stop) is on by default.
   */
  blockwise?: true;
}

/** How many contexts' worth of tokens a blockwise family may write in one request. */
export const BLOCKWISE_CONTEXTS = 16;
/** BD3-LM's entropy rule: below 4 nats over the last 256 tokens the sample is degenerate. */
export const BD3LM_ENTROPY = { minEntropy: 4, entropyWindow: 256 } as const;

const FAMILIES: Record<string, Family> = {
  mdlm: withRemasking(mdlmFamily),
  duo: duoFamily,
  bd3lm: bd3lmFamily,
  e2d2: e2d2Family,
  asarm: asarmFamily,
};

export function familyOf(manifest: Manifest): Family | null {
  return FAMILIES[manifest.family] ?? null;
}

export function servedFamilies(): string[] {
  return Object.keys(FAMILIES);
}
