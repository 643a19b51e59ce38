#!/usr/bin/env bash
# Trains the BD3-LM of the zoo (models/zoo/bd3lm-brown) on one GPU: block sizes 4, 8 and 16
# (one drawn per step, so every size the manifest lists was trained), noise clipped to
# t in [0.3, 0.8] per block as BD3-LM's clipped schedules do.
#   bash models/gpu/train_bd3lm.sh OUTDIR MINUTES [more dlm.train arguments]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/{ema.pt,results.json,train.log}. Export on the CPU with
#   (cd models && python3 -m dlm.export_bd3lm --run OUTDIR --tokenizer ../.work/tok/tokenizer.json \
#       --out zoo/bd3lm-brown --name bd3lm-brown --fp16-weights)
# PRESET (default judge: d256, 6 layers), DEVICE (default cuda; bf16 autocast there).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
(cd models && "$PY" -m dlm.train --family bd3lm --preset "${PRESET:-judge}" --block-sizes "${BLOCK_SIZES:-4,8,16}" \
   --t-min 0.3 --t-max 0.8 --loss-weighting unweighted --out "$OUT" --time-budget "$MIN" \
   --eval-every 1000 --device "${DEVICE:-cuda}" "${@:3}" > "$OUT/train.log" 2>&1)
rm -f "$OUT/ckpt.pt"
tail -n 1 "$OUT/train.log"
