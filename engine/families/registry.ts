// Which family builds a model's sequences (family.ts says what a family is). A new family is
// one file here plus one line in FAMILIES below.
import type { Manifest } from '../manifest.js';
import type { Family } from './family.js';
import { bd3lmFamily } from './bd3lm-family.js';
import { e2d2Family } from './e2d2-family.js';
import { asarmFamily } from './asarm-family.js';
import { duoFamily } from './duo-family.js';
import { mdlmFamily } from './mdlm-family.js';
import { withRemasking } from './with-remasking.js';

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
