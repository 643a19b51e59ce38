#!/usr/bin/env bash
# Writes the int8 variant of every shipped model's graphs and records it in its model.json
# (models/dlm/quantize.py; deterministic: rerunning gives the same bytes):
#   bash models/quantize_zoo.sh
# The default model's variant derives its weights from the committed denoiser.onnx at session
# creation (--weights derive, 0.2 MB), because an embedded int8 copy (~16 MB more) would take the
# directory past its 40 MB limit; the small models embed theirs (a self-contained file that opens
# faster). The small models keep their output head in float (--keep output_layer / head): with
# d_model 128-256 their head's input has outlier channels that per-tensor activation quantization
# crushes (mean KL to fp32 0.02-0.05 nats with it, 1e-5 without, engine/eval/precision-drift.ts);
# the default's head quantizes well (0.0021 vs 0.0018) and is 13% of its MatMul work, so it is int8.
# --default-on cpu only where the card shows int8's Gen PPL within 5% of fp32's and bench:int8
# shows int8 faster: Duo and LDDM. Not the default model (npm run int8-quality: NELBO +0.12%, but Gen PPL +22.7% over two seed sets of 32), E2D2 (+11.7%),
# BD3-LM (x0.86-0.93 tokens/s) or AS-ARM (x1.03): they serve int8 only when asked.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
q() { "$PY" -m dlm.quantize "$@"; }
q zoo/default/denoiser.onnx zoo/default/denoiser.int8.onnx --weights derive --role denoiser
q zoo/tiny-mdlm/denoiser.onnx zoo/tiny-mdlm/denoiser.int8.onnx --keep output_layer --keep /head/ --role denoiser
q zoo/duo-brown/denoiser.onnx zoo/duo-brown/denoiser.int8.onnx --keep output_layer --keep /head/ --role denoiser --default-on cpu
q zoo/lddm-brown/denoiser.onnx zoo/lddm-brown/denoiser.int8.onnx --keep output_layer --keep /head/ --role denoiser --default-on cpu
# LDDM-U: int8 on request only (no bench:int8 run of it yet to show it faster).
q zoo/lddmu-brown/denoiser.onnx zoo/lddmu-brown/denoiser.int8.onnx --keep output_layer --keep /head/ --role denoiser
q zoo/bd3lm-brown/block.onnx zoo/bd3lm-brown/block.int8.onnx --keep output_layer --keep /head/ --role block
q zoo/e2d2-brown/encoder.onnx zoo/e2d2-brown/encoder.int8.onnx --keep output_layer --keep /head/ --role encoder
q zoo/e2d2-brown/decoder.onnx zoo/e2d2-brown/decoder.int8.onnx --keep output_layer --keep /head/ --role decoder
q zoo/asarm-brown/asarm.onnx zoo/asarm-brown/asarm.int8.onnx --keep output_layer --keep /head/ --role asarm
