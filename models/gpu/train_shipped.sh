#!/usr/bin/env bash
# Trains the shipped MDLM default and the AR judge at the same time on one GPU.
#   bash models/gpu/train_shipped.sh OUTDIR MINUTES
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/{mdlm,judge}/{ema.pt,results.json,train.log}. Export here with
# models/export_shipped.sh OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
mkdir -p "$OUT/mdlm" "$OUT/judge"
export PYTHONUNBUFFERED=1
(cd models && "$PY" -m dlm.train --family mdlm --preset default --out "$OUT/mdlm" --time-budget "$MIN" \
   --loss-weighting unweighted --eval-every 1000 --device cuda > "$OUT/mdlm/train.log" 2>&1) &
(cd models && "$PY" -m dlm.train --family ar --preset judge --out "$OUT/judge" --time-budget "$MIN" \
   --eval-every 1000 --device cuda > "$OUT/judge/train.log" 2>&1) &
wait
rm -f "$OUT"/*/ckpt.pt  # optimizer state stays on the GPU machine
tail -n 2 "$OUT"/*/train.log
