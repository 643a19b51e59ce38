#!/usr/bin/env bash
# The chat fine-tune of the shipped default on a CPU, exactly as run for the card: recover the
# default's PyTorch weights from its ONNX initializers, encode the instruction data and Brown +
# KJV with the default's own tokenizer (the fine-tune keeps it), then LLaDA-style SFT mixed with
# plain-text MDLM batches (models/dlm/sft.py), niced, resumable (run it again with RESUME=1).
#   bash models/train_chat_cpu.sh MINUTES [OUT]     (after models/setup.sh; env THREADS=2, NICE=10:
#   on a CPU shared with other jobs one thread at nice 0 trains faster than two niced ones)
# Writes OUT (default .work/runs/chat)/{ckpt.pt,ema.pt,results.json,train.log}; export with
#   (cd models && python3 -m dlm.export --run ../OUT --tokenizer zoo/default/tokenizer.json \
#      --out DIR --name dlm-default --fp16-weights --chat-template data/chat_template.json)
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:?minutes}; OUT=${2:-.work/runs/chat}
PY=${PYTHON:-/usr/bin/python3}
# bf16 autocast where the CPU has bf16 instructions (avx512_bf16 / amx_bf16: torch's bf16 matmul
# ran 1.4x fp32 on an AVX512-BF16 EPYC); fp32 elsewhere (30x slower in bf16 on an AVX2-only CPU).
BF16=--no-bf16; grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && BF16=--bf16
TOK=models/zoo/default/tokenizer.json
mkdir -p .work/tok-default .work/chat
[ -f .work/runs/default-recovered/ema.pt ] || (cd models && "$PY" -m dlm.from_onnx --model zoo/default --out ../.work/runs/default-recovered)
if [ ! -f .work/tok-default/train.bin ]; then
  (cd models && "$PY" -m dlm.corpus --sources brown,kjv --out ../.work/corpus-default)
  cp "$TOK" .work/tok-default/tokenizer.json
  for split in train val; do
    node models/tools/encode.mjs --tokenizer "$TOK" --input .work/corpus-default/$split.jsonl --out .work/tok-default/$split.bin
  done
fi
[ -f .work/chat/train.jsonl ] || (cd models && "$PY" -m data.build_instructions --out ../.work/chat)
[ -f dist/tokenizer/chat.js ] || npx tsc -p tsconfig.json
[ -f .work/chat/train.bin ] || node models/tools/encode_chat.mjs --tokenizer "$TOK" \
  --template models/data/chat_template.json --input .work/chat/train.jsonl --out .work/chat/train
mkdir -p "$OUT"
(cd models && nice -n "${NICE:-10}" "$PY" -m dlm.sft --init ../.work/runs/default-recovered --chat ../.work/chat/train \
   --text ../.work/tok-default --out "../$OUT" --minutes "$MIN" --lr 1.5e-4 --ema 0.99 --sft-batch 16 \
   --text-batch 4 --text-every 2 --canvas-max 64 --pad-weight 0.1 --dev 64 --val-windows 16 --eval-minutes 20 \
   --ckpt-minutes 10 --warmup-minutes 3 --threads "${THREADS:-2}" $BF16 ${RESUME:+--resume})
