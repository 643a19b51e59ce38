#!/usr/bin/env bash
# The GPU checks of issue 8 on a machine with an NVIDIA GPU and the CUDA 13 libraries, with or
# without Node.js or a network (scripts/pack-device-carry.sh packs what it needs):
#   1. unpacks the carried base (node, production node_modules, dist/, libvulkan1) if given;
#   2. shows that --device cuda fails loudly, naming what is missing, before the provider is in;
#   3. installs the CUDA provider (scripts/install-cuda.sh) from a carried tarball or folder;
#   4. runs the device tests (node --test) and the device probe on each model: every graph on
#      cpu and cuda (and webgpu where a Vulkan loader is present, or carried), outputs compared
#      with the CPU, timed at several batch sizes;
#   5. if the server is in the tree (dist/server/main.js), starts it with --device cuda and asks
#      /health and one completion.
#
# usage: scripts/gpu-check.sh [--bundle 'GLOB' | --base base.tar.xz --provider PATH]
#          [--model DIR]... [--batches 1,8,32,64] [--runs 10] [--no-webgpu] [--out DIR]
#   --bundle          the parts scripts/pack-device-carry.sh split its bundle into (a glob,
#                     joined in sorted order): base and provider in one
#   --provider        the npm tarball (.tgz), a pruned .tar.xz from pack-device-carry.sh, or an
#                     unpacked provider folder; without it, an installed provider is used, or
#                     the provider is downloaded from npm (needs a network)
#   --no-webgpu       skip WebGPU (e.g. in a second call that already ran it)
#   --model           model directory or .onnx file (default: every models/zoo/*/model.json, else
#                     a tiny test graph built with python3 + onnx)
#   --base-only       unpack the base and run steps 1-2 (and webgpu), stop before the provider
# Results go to --out (default: $OUT when set, else .work/gpu-check/out): log.txt, table.md,
# probes.json (every probe report) and server.log; scratch stays in .work/gpu-check.
# Exit 0 when every step that ran passed; 1 otherwise. Steps that could not run say "NOT RUN".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

base=""; provider=""; bundle=""; models=(); batches="1,8,32,64"; runs=10; webgpu=1; base_only=0
out="${OUT:-${ROOT}/.work/gpu-check/out}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift ;;
    --provider) provider="$2"; shift ;;
    --bundle) bundle="$2"; shift ;;
    --model) models+=("$2"); shift ;;
    --batches) batches="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --no-webgpu) webgpu=0 ;;
    --base-only) base_only=1 ;;
    --out) out="$2"; shift ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done
# $OUT comes back to the caller (at most 8 small files): only log.txt, probes.json, table.md and
# server.log go there; scratch (unpacked provider, graphs, per-run reports) stays in .work/.
# Reports of an earlier call (a --base-only one) stay, so the last call's table has them all.
work="${ROOT}/.work/gpu-check"
[[ -n "$base$bundle" ]] && rm -rf "${work:?}/probes"
mkdir -p "$out" "${work}/probes"
exec > >(tee -a "${out}/log.txt") 2>&1
failures=0
summary=()
# Not grep -q: it stops reading early, and under pipefail the writer's SIGPIPE fails the test.
has_vulkan() {
  local d
  IFS=':' read -r -a _dirs <<<"${LD_LIBRARY_PATH:-}"
  for d in "${_dirs[@]}"; do [[ -n "$d" && -e "$d/libvulkan.so.1" ]] && return 0; done
  ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null
}
step() { echo; echo "=== $*"; }
record() { summary+=("$1: $2"); [[ "$2" == FAIL* ]] && failures=$((failures + 1)); return 0; }

# --- 1. what this machine has; the carried base --------------------------------------------
step "machine"
uname -srm
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n1)"
  echo "GPU: ${gpu}"
else
  gpu="none"
  echo "no nvidia-smi: no NVIDIA GPU visible"
fi
# Dense tensor-core peaks from NVIDIA's datasheets, TF32 and FP16/BF16, in TFLOP/s.
peaks=()
case "$gpu" in
  *H100*PCIe*) peaks=(--peak-tf32 378 --peak-fp16 756) ;;
  *H100*|*H200*) peaks=(--peak-tf32 494.7 --peak-fp16 989.4) ;;
  *A100*) peaks=(--peak-tf32 156 --peak-fp16 312) ;;
esac
[[ ${#peaks[@]} -gt 0 ]] && echo "peaks for the FLOP/s share: ${peaks[*]}"

if [[ -n "$bundle" ]]; then
  step "joining the bundle from ${bundle}"
  # shellcheck disable=SC2086 # the glob is meant to expand here
  # Ordered by the part's own name (bundle.part00, 01, ...), not by folder (p10 sorts before p2).
  parts_found=$(ls -1 $bundle 2>/dev/null | awk -F/ '{ print $NF "\t" $0 }' | sort | cut -f2)
  [[ -n "$parts_found" ]] || { echo "gpu-check: no parts match ${bundle}" >&2; exit 1; }
  echo "$parts_found"
  rm -rf "${work}/bundle" && mkdir -p "${work}/bundle"
  # shellcheck disable=SC2086
  if ! cat $parts_found | tar -xf - -C "${work}/bundle"; then
    echo "gpu-check: the bundle is incomplete or damaged: were all parts carried, in calls to the same (still warm) machine?" >&2
    exit 1
  fi
  base="${work}/bundle/base.tar.xz"
  provider="$(ls "${work}"/bundle/provider-*.tar.xz | head -n1)"
fi

unpacked="${ROOT}/.devcarry/unpacked"
if [[ -n "$base" ]]; then
  step "unpacking ${base}"
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  if command -v xz >/dev/null 2>&1; then tar -xJf "$base" -C "$unpacked"
  else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$base" "$unpacked"; fi || { echo "gpu-check: cannot unpack ${base}" >&2; exit 1; }
fi
if [[ -d "$unpacked" ]]; then
  export PATH="${unpacked}/bin:${PATH}"
  # The carried node_modules and dist move into the tree (the tree that travels has neither);
  # a marker tells them from a developer's own, which are never touched.
  for d in node_modules dist; do
    [[ -d "${unpacked}/${d}" ]] || continue
    if [[ -e "${ROOT}/${d}" && ! -f "${ROOT}/${d}/.dlm-carried" ]]; then
      echo "gpu-check: ${ROOT}/${d} exists and was not carried: using it, not the carried one"
      continue
    fi
    rm -rf "${ROOT:?}/${d}" && mv "${unpacked}/${d}" "${ROOT}/${d}" && touch "${ROOT}/${d}/.dlm-carried"
  done
fi
command -v node >/dev/null 2>&1 || { echo "gpu-check: no node: pass --base .devcarry/base/base.tar.xz (scripts/pack-device-carry.sh)" >&2; exit 1; }
[[ -f dist/loadtest/device-probe.js ]] || { echo "gpu-check: dist/ is not built (npm run build, or carry the base)" >&2; exit 1; }
echo "node $(node -v)"

# Vulkan loader for WebGPU: the carried Debian package, unpacked into / (a plain .so), but only
# as root on a machine with an NVIDIA GPU: the throwaway GPU machine, never a developer's.
if [[ $webgpu == 1 ]] && ! has_vulkan; then
  if [[ "$gpu" != none && $(id -u) == 0 ]]; then
    for deb in "${unpacked}"/debs/libvulkan1_*.deb; do
      [[ -f "$deb" ]] && command -v dpkg >/dev/null 2>&1 && dpkg -x "$deb" / && ldconfig && echo "installed the Vulkan loader from $(basename "$deb")"
    done
  else
    echo "no Vulkan loader here; not installing the carried one (only done as root on a GPU machine)"
  fi
fi
# The NVIDIA Vulkan driver manifest, where the container runtime mounted the driver.
if [[ -z "${VK_DRIVER_FILES:-}" && -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

if [[ ${#models[@]} -eq 0 ]]; then
  for m in models/zoo/*/model.json; do [[ -f "$m" ]] && models+=("$(dirname "$m")"); done
fi
if [[ ${#models[@]} -eq 0 ]]; then
  graph="${work}/probe-graph.onnx"
  if ${PYTHON:-python3} test/fixtures/device-graph.py "$graph" 8192 256; then
    models+=("$graph")
    echo "no models/zoo model in the tree: probing a test graph (vocab 8192, width 256)"
  fi
fi
export DLM_TEST_PYTHON="${PYTHON:-python3}"

probe() { # device model [probe options...]
  local device="$1" model="$2" name
  shift 2
  name="$(basename "$model" .onnx)"
  local extra=("$@")
  [[ "$device" == cpu ]] || extra+=("${peaks[@]}")
  node dist/loadtest/device-probe.js --device "$device" --model "$model" --batch "$batches" --runs "$runs" "${extra[@]}" \
    --json-out "${work}/probes/probe-${device}-${name}.json"
}

# --- 2. --device cuda before the provider is installed: must fail, naming what is missing ----
ort_bin="${ROOT}/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
if [[ ! -f "${ort_bin}/libonnxruntime_providers_cuda.so" ]]; then
  step "--device cuda without the provider (must fail loudly)"
  node dist/loadtest/device-probe.js --device cuda --model "${models[0]}" --batch 1 --runs 1
  rc=$?
  if [[ $rc == 2 ]]; then record "cuda without provider" "ok (exit 2 with the reason above)"
  else record "cuda without provider" "FAIL (exit ${rc}, expected 2)"; fi
fi

# --- webgpu -------------------------------------------------------------------------------
if [[ $webgpu == 1 ]]; then
  if has_vulkan; then
    for m in "${models[@]}"; do
      step "webgpu: ${m}"
      if probe webgpu "$m"; then record "webgpu ${m}" ok; else rc=$?; record "webgpu ${m}" "FAIL (exit ${rc})"; fi
    done
  else
    record webgpu "NOT RUN (no Vulkan loader; carry the base with its libvulkan1 package)"
  fi
fi

# --- 3. the provider ------------------------------------------------------------------------
if [[ $base_only == 0 ]]; then
  if [[ -n "$provider" && "$provider" == *.tar.xz ]]; then
    step "unpacking ${provider}"
    rm -rf "${work}/provider" && mkdir -p "${work}/provider"
    if command -v xz >/dev/null 2>&1; then tar -xJf "$provider" -C "${work}/provider"
    else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$provider" "${work}/provider"; fi
    [[ -f "${work}/provider/package/PRUNED.txt" ]] && cat "${work}/provider/package/PRUNED.txt"
    provider="${work}/provider"
  fi
  step "installing the CUDA provider"
  if [[ -n "$provider" ]]; then bash scripts/install-cuda.sh --from "$provider" --cache "${work}/cache"; rc=$?
  else bash scripts/install-cuda.sh; rc=$?; fi   # from npm, unless already installed
  if [[ $rc == 3 ]]; then
    eval "$(bash scripts/install-cuda.sh --print-env)"
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    bash scripts/install-cuda.sh --check; rc=$?
  fi
  if [[ $rc == 0 ]]; then record "install-cuda" ok; else record "install-cuda" "FAIL (exit ${rc})"; fi

  # --- 4. tests and probes --------------------------------------------------------------------
  step "device tests"
  node --test --test-reporter=spec dist/test/device-gpu.test.js dist/test/device-select.test.js
  rc=$?
  if [[ $rc == 0 ]]; then record "node --test device-*" ok; else record "node --test device-*" "FAIL (exit ${rc})"; fi
  for m in "${models[@]}"; do
    for device in cpu cuda; do
      step "${device}: ${m}"
      if probe "$device" "$m"; then record "${device} ${m}" ok; else rc=$?; record "${device} ${m}" "FAIL (exit ${rc})"; fi
    done
  done

  # Issue 8, item 3: the same denoiser graphs with the logits reduced on the device (argmax and
  # its log-probability per position), fetching only those: the copy a confidence sampler saves.
  for m in "${models[@]}"; do
    graphs=("$m")
    [[ -d "$m" ]] && graphs=("$m"/*.onnx)
    for g in "${graphs[@]}"; do
      [[ -f "$g" ]] || continue
      g_name="${g##*/}"
      red="${work}/$(basename "$m" .onnx).${g_name%.onnx}.reduced.onnx"
      mask="$(${PYTHON:-python3} -c 'import json,sys; print(json.load(open(sys.argv[1]))["special_tokens"].get("mask") or "")' "$m/model.json" 2>/dev/null || true)"
      if ${PYTHON:-python3} scripts/add-logit-reductions.py "$g" "$red" ${mask:+--exclude-id "$mask"} >/dev/null 2>&1; then
        for device in cpu cuda; do
          step "${device}, logits reduced in the graph: ${g}"
          if probe "$device" "$red" --outputs logits_argmax,logits_max_logprob; then record "${device} ${red##*/}" ok
          else rc=$?; record "${device} ${red##*/}" "FAIL (exit ${rc})"; fi
        done
      fi
    done
  done

  # --- 5. the server on the GPU, when it is in the tree -----------------------------------------
  if [[ -f dist/server/main.js && -d "${models[0]}" ]]; then
    step "server --device cuda --model ${models[0]}"
    port=18080
    node dist/server/main.js --device cuda --model "${models[0]}" --port "$port" >"${out}/server.log" 2>&1 &
    pid=$!
    up=0
    for _ in $(seq 1 120); do
      if node -e "fetch('http://127.0.0.1:${port}/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; then up=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if [[ $up == 1 ]]; then
      node -e "
        fetch('http://127.0.0.1:${port}/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'The', max_tokens: 16 }) })
          .then(async (r) => { const t = await r.text(); console.log(r.status, t.slice(0, 400)); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(e); process.exit(1); })"
      rc=$?
      if [[ $rc == 0 ]]; then record "server cuda" ok; else record "server cuda" "FAIL (completion)"; fi
    else
      tail -n 20 "${out}/server.log"
      record "server cuda" "FAIL (no /health)"
    fi
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  else
    record "server cuda" "NOT RUN (no dist/server/main.js or no model directory)"
  fi
fi

if compgen -G "${work}/probes/probe-*.json" >/dev/null; then
  step "table (docs/gpu.md benchmarks)"
  node dist/loadtest/device-table.js --gpu "${gpu%%,*}" "${work}"/probes/probe-*.json | tee "${out}/table.md"
  node -e 'const fs = require("fs"); console.log(JSON.stringify(process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")))))' \
    "${work}"/probes/probe-*.json >"${out}/probes.json"
fi

step "summary (GPU: ${gpu})"
for s in "${summary[@]}"; do echo "  $s"; done
[[ $failures == 0 ]]
