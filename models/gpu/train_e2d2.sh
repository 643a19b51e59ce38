#!/usr/bin/env bash
# Trains the E2D2 model (encoder-decoder block diffusion) on one GPU.
#   bash models/gpu/train_e2d2.sh OUTDIR MINUTES [more dlm.train arguments]
# Reads .work/tok/{tokenizer.json,train.bin,val.bin} (bash models/build_data.sh builds them);
# writes OUTDIR/e2d2/{ema.pt,results.json,train.log}, then exports OUTDIR/e2d2-brown (model.json,
# encoder.onnx, decoder.onnx with fp16 weights, README.md card) when the export works there;
# otherwise export on the CPU with
#   (cd models && python3 -m dlm.e2d2_export --run OUTDIR/e2d2 --tokenizer ../.work/tok/tokenizer.json \
#      --out zoo/e2d2-brown --name e2d2-brown --fp16-weights --card)
# PRESET (default judge: d256, 6 layers, ~8M parameters), DEC_LAYERS (default 2 of them),
# BLOCK_SIZES (default 4,8; the first is the served default), DEVICE (default cuda; bf16 autocast).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "$1"); MIN=$2
PY=${PYTHON:-python3}
mkdir -p "$OUT/e2d2"
export PYTHONUNBUFFERED=1
(cd models && "$PY" -m dlm.train --family e2d2 --preset "${PRESET:-judge}" --dec-layers "${DEC_LAYERS:-2}" \
   --block-sizes "${BLOCK_SIZES:-4,8}" --out "$OUT/e2d2" --time-budget "$MIN" --eval-every 1000 \
   --device "${DEVICE:-cuda}" "${@:3}" > "$OUT/e2d2/train.log" 2>&1)
rm -f "$OUT/e2d2/ckpt.pt"  # optimizer state stays on the GPU machine
tail -n 1 "$OUT/e2d2/train.log"
(cd models && "$PY" -m dlm.e2d2_export --run "$OUT/e2d2" --tokenizer ../.work/tok/tokenizer.json \
   --out "$OUT/e2d2-brown" --name e2d2-brown --fp16-weights --card) || echo "export here failed; export on the CPU (see the header)"
