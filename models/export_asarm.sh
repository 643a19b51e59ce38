#!/usr/bin/env bash
# Turns a train_asarm.sh OUTDIR into a servable model directory (fp16-stored weights).
#   bash models/export_asarm.sh OUTDIR [ZOO_DIR]    (ZOO_DIR defaults to models/zoo/asarm-brown)
set -euo pipefail
RUN=$(realpath "$1"); ZOO=$(realpath -m "${2:-$(dirname "$0")/zoo/asarm-brown}")
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
"$PY" -m dlm.asarm_export --run "$RUN" --tokenizer ../.work/tok/tokenizer.json \
  --out "$ZOO" --name "$(basename "$ZOO")" --fp16-weights \
  --description "Any-subset autoregressive model (two-stream) on Brown + KJV, decoded with ASSD"
