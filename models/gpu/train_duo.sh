#!/usr/bin/env bash
# Trains the Duo (uniform-state) model and beside it, at the same time and with the same settings,
# LDDM-U (Duo + loopholing), on one GPU: the pair compares like with like.
#   bash models/gpu/train_duo.sh OUTDIR MINUTES [more dlm.train arguments]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/duo/ and OUTDIR/lddm-u/ ({ema.pt,results.json,train.log}). Export here on the CPU
# with   bash models/export_uniform.sh OUTDIR
# PRESET (default judge: d256, 6 layers, ~8M parameters, 16 MB in fp16), DEVICE (default cuda),
# CURRICULUM_STEPS (Duo's Gaussian curriculum for the first N steps; default 0 = off),
# FAMILIES (default "duo lddm-u").
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
for f in ${FAMILIES:-duo lddm-u}; do
  mkdir -p "$OUT/$f"
  (cd models && "$PY" -m dlm.train --family "$f" --preset "${PRESET:-judge}" --out "$OUT/$f" --time-budget "$MIN" \
     --curriculum-steps "${CURRICULUM_STEPS:-0}" --eval-every 1000 --device "${DEVICE:-cuda}" "${@:3}" > "$OUT/$f/train.log" 2>&1) &
done
wait
for f in ${FAMILIES:-duo lddm-u}; do
  rm -f "$OUT/$f/ckpt.pt"  # optimizer state stays on the GPU machine
  tail -n 1 "$OUT/$f/train.log"
done
