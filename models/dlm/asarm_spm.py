"""SentencePiece model (spiece.model, a Unigram model as XLNet ships it) -> a tokenizers-format
tokenizer.json, so the engine's tokenizer (the Hugging Face tokenizers binding) reads the
published AS-ARM's vocabulary. Debian has no sentencepiece or protobuf package; the file is a
small protobuf, read here field by field.

  python -m dlm.asarm_spm spiece.model tokenizer.json

The pipeline follows what XLNet's fast tokenizer does: `` and '' become ", accents are kept
apart and dropped (NFKD, strip accents; xlnet-base-cased's keep_accents is false), the model's
own precompiled normalisation map applies, runs of spaces collapse, and words get the U+2581
prefix (Metaspace). Control and user-defined pieces (<s>, </s>, <mask>, <cls>, ...) are special
added tokens, so `<mask>` in a prompt is the mask id.
"""
import base64
import json
import struct
import sys

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


class SpmError(SystemExit):
    pass


def _varint(buf: bytes, i: int):
    out = shift = 0
    while True:
        if i >= len(buf):
            raise SpmError('spiece.model: truncated varint')
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, i
        shift += 7


def fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; value is int, bytes or float bits."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise SpmError(f'spiece.model: truncated field {num} ({len(buf) - i} of {n} bytes)')
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise SpmError(f'spiece.model: unsupported protobuf wire type {wt}')
        yield num, wt, v


def read_model(data: bytes):
    """-> (pieces [(piece, score, type)], precompiled charsmap bytes, model type)."""
    pieces, charsmap, model_type = [], b'', 1
    for num, wt, v in fields(data):
        if num == 1 and wt == 2:
            piece, score, typ = None, 0.0, NORMAL
            for n2, w2, v2 in fields(v):
                if n2 == 1:
                    piece = v2.decode('utf-8')
                elif n2 == 2 and w2 == 5:
                    score = struct.unpack('<f', v2)[0]
                elif n2 == 3:
                    typ = v2
            if piece is None:
                raise SpmError(f'spiece.model: piece {len(pieces)} has no text')
            pieces.append((piece, score, typ))
        elif num == 2 and wt == 2:
            for n2, _, v2 in fields(v):
                if n2 == 3:
                    model_type = v2
        elif num == 3 and wt == 2:
            for n2, _, v2 in fields(v):
                if n2 == 2:
                    charsmap = v2
    if not pieces:
        raise SpmError('spiece.model: no pieces (is this a SentencePiece model?)')
    if model_type != 1:
        raise SpmError(f'spiece.model: model type {model_type}; only Unigram (1) is converted')
    return pieces, charsmap, model_type


def tokenizer_json(pieces, charsmap: bytes) -> dict:
    unk = next((i for i, p in enumerate(pieces) if p[2] == UNKNOWN), 0)
    special = [i for i, p in enumerate(pieces) if p[2] in (UNKNOWN, CONTROL, USER_DEFINED)]
    norms = [
        {'type': 'Replace', 'pattern': {'String': '``'}, 'content': '"'},
        {'type': 'Replace', 'pattern': {'String': "''"}, 'content': '"'},
        {'type': 'NFKD'},
        {'type': 'StripAccents'},
    ]
    if charsmap:
        norms.append({'type': 'Precompiled', 'precompiled_charsmap': base64.b64encode(charsmap).decode('ascii')})
    norms.append({'type': 'Replace', 'pattern': {'Regex': ' {2,}'}, 'content': ' '})
    meta = {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True}
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [{'id': i, 'content': pieces[i][0], 'single_word': False, 'lstrip': False, 'rstrip': False,
                          'normalized': False, 'special': True} for i in special],
        'normalizer': {'type': 'Sequence', 'normalizers': norms},
        'pre_tokenizer': meta,
        'post_processor': None,
        'decoder': meta,
        'model': {'type': 'Unigram', 'unk_id': unk, 'vocab': [[p, s] for p, s, _ in pieces], 'byte_fallback': False},
    }


def convert(spm_path: str, out_path: str) -> dict:
    with open(spm_path, 'rb') as f:
        pieces, charsmap, _ = read_model(f.read())
    tok = tokenizer_json(pieces, charsmap)
    with open(out_path, 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    return tok


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(__doc__)
    tok = convert(argv[0], argv[1])
    print(json.dumps({'out': argv[1], 'pieces': len(tok['model']['vocab']), 'special': len(tok['added_tokens'])}))


if __name__ == '__main__':
    main()
