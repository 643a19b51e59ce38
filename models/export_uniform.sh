#!/usr/bin/env bash
# Turns the GPU runs of models/gpu/train_duo.sh and train_lddm.sh into model directories, here
# on the CPU:
#   bash models/export_uniform.sh OUTDIR
# OUTDIR/duo -> models/zoo/duo-brown, OUTDIR/lddm -> models/zoo/lddm-brown,
# OUTDIR/lddm-u -> models/zoo/lddmu-brown (each with model.json,
# denoiser.onnx with fp16 weights, tokenizer.json and a README.md card), and the same-size MDLM
# baseline OUTDIR/mdlm-base -> .work/zoo/mdlm-base (for the README's comparison, not shipped).
# TOKENIZER: the tokenizer.json the runs were trained with (default .work/tok/tokenizer.json).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$(realpath "$1")
PY=${PYTHON:-/usr/bin/python3}
TOK=$(realpath "${TOKENIZER:-.work/tok/tokenizer.json}")
cd models
for f in duo lddm lddm-u; do
  if [ -f "$RUN/$f/ema.pt" ]; then
    "$PY" -m dlm.export_uniform --run "$RUN/$f" --tokenizer "$TOK" --out "zoo/${f/-/}-brown" --fp16-weights --card
  else
    echo "export_uniform.sh: no $RUN/$f/ema.pt, skipping $f" >&2
  fi
done
if [ -f "$RUN/mdlm-base/ema.pt" ]; then
  "$PY" -m dlm.export --run "$RUN/mdlm-base" --tokenizer "$TOK" --out ../.work/zoo/mdlm-base --name mdlm-base --fp16-weights
fi
