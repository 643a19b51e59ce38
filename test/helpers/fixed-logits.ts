// Builds the fixed-logits model directory (test/fixtures/fixed_logits.py) once per test file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
/** The graph's logits (tokens 0-3, EOS 4, MASK 5), as the fixture writes them. */
export const FIXED_LOGITS = [1.0, 0.0, -0.5, 0.5, -1.0, 3.0];
export const MASK = 5;
export const EOS = 4;

export function buildFixedLogitsModel(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-fixed-'));
  const r = spawnSync('/usr/bin/python3', [join(REPO, 'test/fixtures/fixed_logits.py'), dir, join(REPO, 'models/zoo/tiny-mdlm/tokenizer.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

/** Softmax over the allowed ids at temperature T, then top-k and top-p, computed directly. */
export function expectedDistribution(logits: number[], banned: number, T: number, topK = 0, topP = 1): number[] {
  const ids = logits.map((_, i) => i).filter((i) => i !== banned);
  const w = ids.map((i) => Math.exp(logits[i]! / T));
  const z = w.reduce((a, b) => a + b, 0);
  let p = ids.map((_, j) => w[j]! / z);
  const order = ids.map((_, j) => j).sort((a, b) => p[b]! - p[a]!);
  const keep = new Set<number>();
  let mass = 0;
  for (const j of order) {
    if (topK > 0 && keep.size >= topK) break;
    keep.add(j);
    mass += p[j]!;
    if (mass >= topP) break;
  }
  p = p.map((x, j) => (keep.has(j) ? x : 0));
  const z2 = p.reduce((a, b) => a + b, 0);
  const out = new Array<number>(logits.length).fill(0);
  ids.forEach((id, j) => { out[id] = p[j]! / z2; });
  return out;
}

/**
 * Pearson chi-square statistic of observed counts against expected probabilities, over the
 * categories with positive probability; counts in zero-probability categories are an error.
 */
export function chiSquare(counts: number[], probs: number[]): { stat: number; df: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let stat = 0;
  let df = -1;
  counts.forEach((c, i) => {
    if (probs[i] === 0) {
      assert.equal(c, 0, `token ${i} has probability 0 but was drawn ${c} times`);
      return;
    }
    const e = n * probs[i]!;
    stat += (c - e) ** 2 / e;
    df++;
  });
  return { stat, df };
}

/** Upper 0.1% points of the chi-square distribution by degrees of freedom. */
export const CHI2_999: Record<number, number> = { 1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52 };
