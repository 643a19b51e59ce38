#!/usr/bin/env bash
# Trains the Duo (uniform-state) model on one GPU.
#   bash models/gpu/train_duo.sh OUTDIR MINUTES [more dlm.train arguments]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/duo/{ema.pt,results.json,train.log}. Export here on the CPU with
#   bash models/export_uniform.sh OUTDIR
# PRESET (default judge: d256, 6 layers, ~8M parameters, 16 MB in fp16), DEVICE (default cuda),
# CURRICULUM_STEPS (Duo's Gaussian curriculum for the first N steps; default 0 = off).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
mkdir -p "$OUT/duo"
export PYTHONUNBUFFERED=1
(cd models && "$PY" -m dlm.train --family duo --preset "${PRESET:-judge}" --out "$OUT/duo" --time-budget "$MIN" \
   --curriculum-steps "${CURRICULUM_STEPS:-0}" --eval-every 1000 --device "${DEVICE:-cuda}" "${@:3}" > "$OUT/duo/train.log" 2>&1)
rm -f "$OUT/duo/ckpt.pt"  # optimizer state stays on the GPU machine
tail -n 1 "$OUT/duo/train.log"
