"""Trains a byte-level BPE tokenizer and writes it as a Hugging Face tokenizer.json.

The serving side encodes with the Hugging Face `tokenizers` binding, so the training data is
also encoded through it (models/tools/encode.mjs): Python only learns the merges."""
import argparse
import heapq
import json
import os
import re
from collections import Counter, defaultdict

SPECIALS = ['[PAD]', '[BOS]', '[EOS]', '[MASK]']

# GPT-2's pre-tokenizer split, with \p{L}/\p{N} approximated by Python's classes; it only decides
# which byte runs may merge during training, the binding applies the exact rule when encoding.
_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (ByteLevel's alphabet)."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + \
        list(range(ord('®'), ord('ÿ') + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def word_counts(texts) -> Counter:
    b2u = bytes_to_unicode()
    counts: Counter = Counter()
    for text in texts:
        for piece in _SPLIT.findall(text):
            counts[''.join(b2u[b] for b in piece.encode('utf-8'))] += 1
    return counts


def train(counts: Counter, n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE with incremental pair counts and a lazy max-heap (ties: lexicographic)."""
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    pairs: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pairs[p] += freq[i]
            where[p].add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pairs.get(p, 0) != -negc or -negc <= 0:
            continue  # stale entry
        merges.append(p)
        a, b = p
        ab = a + b
        touched: Counter = Counter()
        for i in list(where[p]):
            w = words[i]
            j, out = 0, []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(ab)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            if out == w:
                continue
            for q in zip(w, w[1:]):
                pairs[q] -= freq[i]
                touched[q] += 1
            for q in zip(out, out[1:]):
                pairs[q] += freq[i]
                where[q].add(i)
                touched[q] += 1
            words[i] = out
        del where[p]
        pairs.pop(p, None)
        for q in touched:
            if pairs.get(q, 0) > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return merges


def tokenizer_json(merges: list[tuple[str, str]]) -> dict:
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for ch in bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    added = [{'id': i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
              'normalized': False, 'special': True} for i, s in enumerate(SPECIALS)]
    return {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True,
                          'use_regex': True},
        'post_processor': None,
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True,
                    'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None,
                  'continuing_subword_prefix': None, 'end_of_word_suffix': None, 'fuse_unk': False,
                  'byte_fallback': False, 'ignore_merges': False, 'vocab': vocab,
                  'merges': [f'{a} {b}' for a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--corpus', default=None, help='train.jsonl from dlm.corpus')
    ap.add_argument('--vocab-size', type=int, default=4096)
    ap.add_argument('--out', required=True, help='tokenizer.json to write')
    a = ap.parse_args()
    from .corpus import REPO
    path = a.corpus or os.path.join(REPO, '.work', 'corpus', 'train.jsonl')
    with open(path) as f:
        texts = [json.loads(l)['text'] for l in f]
    n_merges = a.vocab_size - len(SPECIALS) - 256
    merges = train(word_counts(texts), n_merges)
    tok = tokenizer_json(merges)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    print(json.dumps({'out': a.out, 'vocab_size': len(tok['model']['vocab']), 'merges': len(merges)}))


if __name__ == '__main__':
    main()
