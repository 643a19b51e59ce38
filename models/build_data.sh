#!/usr/bin/env bash
# Builds the training data from installed packages (models/setup.sh installs them), all under
# .work/ (git-ignored, rebuilt, never committed):
#   bash models/build_data.sh [VOCAB_SIZE]          the full corpus, BPE of 8192 by default
#   CORPUS=brown-kjv bash models/build_data.sh 4096 today's shipped models' corpus (Brown + KJV)
# 1. corpus text: .work/corpus/{train,val}.jsonl and sources.json (documents and words per source;
#    sources, licences and what is left out: models/data/sources.py)
# 2. byte-level BPE and token files: .work/tok/{tokenizer.json,train.bin,val.bin}
# 3. chat instruction data: .work/chat/{train,heldout}.jsonl, heldout_words.txt
#    (models/data/build_instructions.py), the training part encoded with that BPE and the chat
#    template of models/data/chat_template.json: .work/tok/chat_train.{bin,idx}
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-all}
case "$CORPUS" in
  all) SOURCES=all; VOCAB=${1:-8192} ;;
  brown-kjv) SOURCES=brown,kjv; VOCAB=${1:-4096} ;;
  *) echo "models/build_data.sh: CORPUS is 'all' or 'brown-kjv', not '$CORPUS'" >&2; exit 2 ;;
esac
PY=${PYTHON:-/usr/bin/python3}
(cd models && "$PY" -m dlm.corpus --sources "$SOURCES" --out ../.work/corpus)
(cd models && "$PY" -m dlm.bpe --vocab-size "$VOCAB" --corpus ../.work/corpus/train.jsonl --out ../.work/tok/tokenizer.json)
for split in train val; do
  node models/tools/encode.mjs --tokenizer .work/tok/tokenizer.json --input .work/corpus/$split.jsonl --out .work/tok/$split.bin
done
(cd models && "$PY" -m data.build_instructions --out ../.work/chat)
[ -f dist/tokenizer/chat.js ] || npx tsc -p tsconfig.json
node models/tools/encode_chat.mjs --tokenizer .work/tok/tokenizer.json --template models/data/chat_template.json \
  --input .work/chat/train.jsonl --out .work/tok/chat_train
