#!/usr/bin/env bash
# Trains the loopholing model (LDDM-M) on one GPU, and beside it (BASELINE=1, the default) an
# MDLM of the same size and settings, so that the README's MDLM-vs-LDDM row compares like
# with like.
#   bash models/gpu/train_lddm.sh OUTDIR MINUTES [more dlm.train arguments]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/lddm/ and OUTDIR/mdlm-base/ ({ema.pt,results.json,train.log}). Export here on
# the CPU with   bash models/export_uniform.sh OUTDIR
# PRESET (default judge: d256, 6 layers, ~8M parameters), DEVICE (default cuda).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
P=${PRESET:-judge}
D=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/lddm"
(cd models && "$PY" -m dlm.train --family lddm --preset "$P" --out "$OUT/lddm" --time-budget "$MIN" \
   --loss-weighting unweighted --eval-every 1000 --device "$D" "${@:3}" > "$OUT/lddm/train.log" 2>&1) &
if [ "${BASELINE:-1}" = 1 ]; then
  mkdir -p "$OUT/mdlm-base"
  (cd models && "$PY" -m dlm.train --family mdlm --preset "$P" --out "$OUT/mdlm-base" --time-budget "$MIN" \
     --loss-weighting unweighted --eval-every 1000 --device "$D" "${@:3}" > "$OUT/mdlm-base/train.log" 2>&1) &
fi
wait
rm -f "$OUT"/lddm/ckpt.pt "$OUT"/mdlm-base/ckpt.pt
tail -n 1 "$OUT"/lddm/train.log "$OUT"/mdlm-base/train.log 2>/dev/null || true
