#!/usr/bin/env bash
# Builds the training data from installed packages: corpus text (Brown + KJV), the byte-level
# BPE tokenizer, and uint16 token files, all under .work/ (git-ignored, rebuilt, never committed).
#   bash models/build_data.sh [VOCAB_SIZE]      -> .work/corpus/*.jsonl, .work/tok/{tokenizer.json,train.bin,val.bin}
set -euo pipefail
cd "$(dirname "$0")/.."
VOCAB=${1:-4096}
PY=${PYTHON:-/usr/bin/python3}
(cd models && "$PY" -m dlm.corpus --out ../.work/corpus)
(cd models && "$PY" -m dlm.bpe --vocab-size "$VOCAB" --corpus ../.work/corpus/train.jsonl --out ../.work/tok/tokenizer.json)
for split in train val; do
  node models/tools/encode.mjs --tokenizer .work/tok/tokenizer.json --input .work/corpus/$split.jsonl --out .work/tok/$split.bin
done
