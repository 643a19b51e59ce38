# Sourced by scripts/gpu-check.sh and scripts/gpu-run.sh: the dense tensor-core peaks of an
# NVIDIA GPU from its datasheet, TF32 and FP16/BF16 in TFLOP/s, as device-probe / gpu-serve flags.
#   gpu_peaks "NVIDIA H200"   ->   --peak-tf32 494.7 --peak-fp16 989.4   (nothing for an unknown GPU)
gpu_peaks() {
  case "$1" in
    *H100*PCIe*) echo "--peak-tf32 378 --peak-fp16 756" ;;
    *H100*|*H200*) echo "--peak-tf32 494.7 --peak-fp16 989.4" ;;
    *A100*) echo "--peak-tf32 156 --peak-fp16 312" ;;
  esac
}
