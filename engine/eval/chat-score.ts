// How close an answer is to a reference answer, the two measures of extractive QA and
// summarisation: token F1 (SQuAD's: bag-of-words overlap) and ROUGE-L (longest common
// subsequence, F-measure with beta = 1). Words are SQuAD-normalised: lower case, punctuation
// dropped, articles dropped, so "A dog is..." and "dog is" differ only in what matters.

const ARTICLES = new Set(['a', 'an', 'the']);

export function normalizedWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0 && !ARTICLES.has(w));
}

function f1(common: number, predicted: number, reference: number): number {
  if (predicted === 0 && reference === 0) return 1;
  if (common === 0) return 0;
  const p = common / predicted;
  const r = common / reference;
  return (2 * p * r) / (p + r);
}

/** Harmonic mean of precision and recall of the answer's words (as multisets) against the reference's. */
export function tokenF1(answer: string, reference: string): number {
  const a = normalizedWords(answer);
  const r = normalizedWords(reference);
  const counts = new Map<string, number>();
  for (const w of r) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of a) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  return f1(common, a.length, r.length);
}

/** Length of the longest common subsequence of two word lists (dynamic programming, one row). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0; // row[j-1] of the previous i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}

/** ROUGE-L F1: precision and recall of the longest common word subsequence. */
export function rougeL(answer: string, reference: string): number {
  const a = normalizedWords(answer);
  const r = normalizedWords(reference);
  return f1(lcsLength(a, r), a.length, r.length);
}
