#!/usr/bin/env bash
# Trains the shipped AS-ARM (two-stream, any-subset objective) on one GPU.
#   bash models/gpu/train_asarm.sh OUTDIR MINUTES [extra dlm.asarm_train flags, e.g. --device cpu]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/{ema.pt,results.json,train.log}. Export here with
#   bash models/export_asarm.sh OUTDIR [models/zoo/asarm-brown]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2; shift 2
PY=${PYTHON:-python3}
PRESET=${ASARM_PRESET:-shipped}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
(cd models && "$PY" -m dlm.asarm_train --preset "$PRESET" --out "$OUT" --time-budget "$MIN" --device cuda \
   --eval-every 1000 "$@" > "$OUT/train.log" 2>&1)
rm -f "$OUT/ckpt.pt"  # optimizer state stays on the GPU machine
tail -n 1 "$OUT/train.log"
