#!/usr/bin/env bash
# The one prepared GPU run (issue 16): everything GPU serving has to prove, in one go of at most
# 8 minutes on a machine with an NVIDIA GPU and no Node.js or network, every result as JSON.
#   1. the carried tree's size against the device tool's 64 MiB (here: what a call would carry);
#   2. scripts/gpu-check.sh: unpacks the carried base, installs the CUDA provider from the carried
#      tarball and checks its versions (scripts/install-cuda.sh), runs the device tests, probes
#      every graph on cpu, cuda and webgpu at each batch size (TFLOP/s against the GPU's peak),
#      and the same graphs with the logits reduced in the graph (scripts/add-logit-reductions.py,
#      device-probe --outputs): the bytes a step copies to the host, before and after;
#   3. every model served through the real server per device (cpu, cuda, webgpu) and checked with
#      the official openai client (completion, stream, seed), then the batch sweep through the
#      real scheduler: tokens/s and FLOP/s at each batch size (loadtest/gpu-serve.ts);
#   4. the int8 / fp16 variants a manifest lists (graphs.ROLE.variants), probed like the graphs;
#   5. one JSON ($OUT/gpu-run.json), the log, and the tables built from the JSON
#      (node dist/loadtest/device-table.js --run gpu-run.json).
#
# usage:
#   here, once:     scripts/gpu-run.sh --prepare [--leave-out default,judge]
#                   packs .devcarry/ (scripts/pack-device-carry.sh) and says how to call the device tool
#   there:          scripts/gpu-run.sh --bundle '.devcarry/p*/bundle.part*'
#   here, dry run:  scripts/gpu-run.sh --dry-run     (or DLM_GPU_DRY_RUN=1): every step but the GPU
#                   ones, on the CPU, with --device cpu (test/gpu-run-dryrun.test.ts runs it)
#   options: [--model DIR]... (default: every served model in models/zoo) [--batches 1,8,32,64]
#            [--runs 10] (probe runs per point) [--max-tokens 32] [--steps 8] [--rounds 1]
#            [--leave-out LIST] (models/zoo models that do not travel) [--out DIR]
#            [--budget-s 450] (the whole run; each step's timeout is cut to what is left of it)
# Results go to --out (default $OUT, else .work/gpu-run/out): gpu-run.json, tables.md, log.txt,
# server.log (at most 8 files come back from the device tool). Exit 0 when every step passed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mode=gpu; [[ "${DLM_GPU_DRY_RUN:-0}" == 1 ]] && mode=dry
bundle=""; models=(); batches="1,8,32,64"; runs=10; max_tokens=32; steps=8; rounds=1
# The two GPU-trained models are 47 of the tree's 67 MiB; the CPU-trained ones are the only
# models of five of the six served families (the judge is not served), so those travel.
leave_out="default,judge"
budget_s=450
out="${OUT:-${ROOT}/.work/gpu-run/out}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prepare) mode=prepare ;;
    --dry-run) mode=dry ;;
    --bundle) bundle="$2"; shift ;;
    --model) models+=("$2"); shift ;;
    --batches) batches="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --max-tokens) max_tokens="$2"; shift ;;
    --steps) steps="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --leave-out) leave_out="$2"; shift ;;
    --budget-s) budget_s="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "gpu-run: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done

if [[ $mode == prepare ]]; then
  bash scripts/pack-device-carry.sh --leave-out "$leave_out" || exit 1
  bash scripts/pack-device-carry.sh --check-only --leave-out "$leave_out" || exit 1
  echo
  echo "Hide the models left out from the checkout the device tool sends, and bring them back after:"
  echo "  git sparse-checkout set --no-cone '/*' $(for m in ${leave_out//,/ }; do printf "'!/models/zoo/%s/' " "$m"; done)"
  echo "  ... the calls above, the last one with: bash scripts/gpu-run.sh --bundle '.devcarry/p*/bundle.part*' 2>&1"
  echo "  git sparse-checkout disable"
  exit 0
fi
[[ $mode == gpu && -z "$bundle" ]] && { echo "gpu-run: pass --bundle GLOB (the parts carried), or --dry-run" >&2; exit 1; }

work="${ROOT}/.work/gpu-run"
rm -rf "${work:?}/run" && mkdir -p "${work}/run/variants" "$out"
run="${work}/run"
exec > >(tee -a "${out}/log.txt") 2>&1
failures=0
step() { echo; echo "=== $*"; }
fail() { echo "gpu-run: FAILED: $*"; failures=$((failures + 1)); }
started=$(date +%s)
# A step's timeout: its own cap, or what is left of the run's budget (the merge keeps 20 s).
cap() { local left=$(( started + budget_s - 20 - $(date +%s) )); (( left < 5 )) && left=5; echo $(( $1 < left ? $1 : left )); }

if [[ ${#models[@]} -eq 0 ]]; then
  for m in models/zoo/*/model.json; do
    # The judge (family ar) scores samples; the server does not serve it.
    [[ -f "$m" ]] && ! grep -q '"family": *"ar"' "$m" && models+=("$(dirname "$m")")
  done
fi
model_args=(); for m in "${models[@]}"; do model_args+=(--model "$m"); done
# scripts/add-logit-reductions.py needs the onnx package: the first Python that has it.
if [[ -z "${PYTHON:-}" ]]; then
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import onnx' 2>/dev/null; then export PYTHON="$py"; break; fi
  done
fi
echo "python with onnx: ${PYTHON:-none (the logit reductions will not be measured)}"
echo "gpu-run (${mode}): ${#models[@]} models: ${models[*]}"

# --- 1. what a call carries ----------------------------------------------------------------
step "carried tree"
if [[ $mode == dry ]]; then
  present=(); for m in ${leave_out//,/ }; do [[ -d "models/zoo/${m}" ]] && present+=("$m"); done
  bash scripts/pack-device-carry.sh --check-only --leave-out "$(IFS=,; echo "${present[*]}")" --json "${run}/carry.json" ||
    fail "the tree and the largest part do not fit one call"
else
  # No git history travels: record what arrived instead.
  echo "{\"measuredOn\":\"device\",\"arrivedBytes\":$(du -sb --exclude=.work --exclude=.devcarry/unpacked . | cut -f1)}" >"${run}/carry.json"
fi

# --- 2. provider, versions, device tests, graph probes, logit reductions ---------------------
if [[ $mode == dry ]]; then
  rm -rf "${ROOT}/.work/gpu-check/probes"  # gpu-check keeps earlier calls' reports; a dry run starts clean
  check_args=(--devices cpu --no-install --no-webgpu)
else
  check_args=(--bundle "$bundle")
fi
step "scripts/gpu-check.sh ${check_args[*]}"
timeout "$(cap 220)" bash scripts/gpu-check.sh "${check_args[@]}" --out "${run}/check" --batches "$batches" --runs "$runs" "${model_args[@]}" ||
  fail "gpu-check (exit $?; its summary is above)"
compgen -G "${ROOT}/.work/gpu-check/probes/probe-*.reduced.json" >/dev/null ||
  fail "no graph with its logits reduced was probed (scripts/add-logit-reductions.py: is onnx importable by \$PYTHON?)"
# gpu-check unpacked the carried node and put the provider in; this shell needs them too.
[[ -d "${ROOT}/.devcarry/unpacked/bin" ]] && export PATH="${ROOT}/.devcarry/unpacked/bin:${PATH}"
[[ $mode == gpu ]] && eval "$(bash scripts/install-cuda.sh --print-env)"
if [[ -z "${VK_DRIVER_FILES:-}" && -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
command -v node >/dev/null 2>&1 || { echo "gpu-run: no node after gpu-check: nothing more can run" >&2; exit 1; }

step "versions"
gpu="none"; command -v nvidia-smi >/dev/null 2>&1 && gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1)"
# shellcheck source=scripts/gpu-peaks.sh
source "${ROOT}/scripts/gpu-peaks.sh"
read -r -a peaks <<<"$(gpu_peaks "$gpu")"
cuda_check="$(bash scripts/install-cuda.sh --check 2>&1)"; cuda_rc=$?
echo "$cuda_check"
node -e '
  const fs = require("fs");
  const [gpu, dry, rc, check, peaks] = process.argv.slice(1);
  const ort = JSON.parse(fs.readFileSync("node_modules/onnxruntime-node/package.json", "utf8")).version;
  const marker = "node_modules/onnxruntime-node/bin/napi-v6/linux/x64/dlm-cuda-provider.txt";
  fs.writeFileSync(process.argv[6], JSON.stringify({
    gpu: gpu === "none" ? null : gpu.split(",")[0].trim(), driver: gpu === "none" ? null : (gpu.split(",")[1] ?? "").trim() || null,
    dryRun: dry === "dry", node: process.version, onnxruntimeNode: ort,
    cudaProvider: fs.existsSync(marker) ? fs.readFileSync(marker, "utf8").trim() : null,
    installCudaCheck: { exit: Number(rc), output: check.split("\n").slice(-12) }, peaks: peaks.trim() || null,
    date: new Date().toISOString(),
  }) + "\n");' "$gpu" "$mode" "$cuda_rc" "$cuda_check" "${peaks[*]:-}" "${run}/machine.json" || fail "versions"
if [[ $mode == gpu && $cuda_rc != 0 ]]; then fail "install-cuda.sh --check exit ${cuda_rc}"; fi

# --- 3. every model through the real server, per device --------------------------------------
# The GPU first: a step cut short by the budget then costs the CPU baseline, not the GPU numbers.
devices=()
if [[ $mode == gpu ]]; then
  devices+=(cuda)
  if ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then devices+=(webgpu); else echo "no Vulkan loader: webgpu not served"; fi
fi
devices+=(cpu)
for device in "${devices[@]}"; do
  step "serve on ${device}: ${models[*]}"
  extra=(); [[ $device == cpu ]] || extra=("${peaks[@]}")
  timeout "$(cap 100)" node dist/loadtest/gpu-serve.js --device "$device" "${model_args[@]}" --batches "$batches" \
    --max-tokens "$max_tokens" --steps "$steps" --rounds "$rounds" "${extra[@]}" --json-out "${run}/serve-${device}.json" ||
    fail "serve on ${device} (exit $?)"
done

# --- 4. int8 / fp16 variants the manifests list ----------------------------------------------
step "graph variants (graphs.ROLE.variants)"
node -e '
  const fs = require("fs"), path = require("path");
  for (const dir of process.argv.slice(1)) {
    const m = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
    for (const [role, g] of Object.entries(m.graphs ?? {})) {
      const v = g.variants ?? {};
      // An object {name: file | {file}} or a list of {name, file}.
      const list = Array.isArray(v) ? v.map((x) => [x.name ?? x.dtype ?? x.file, x.file]) : Object.entries(v).map(([k, x]) => [k, typeof x === "string" ? x : x.file]);
      for (const [name, file] of list) if (file) console.log([path.basename(dir), role, name, path.join(dir, file)].join("\t"));
    }
  }' "${models[@]}" >"${run}/variants.tsv" || fail "reading the manifests' variants"
if [[ ! -s "${run}/variants.tsv" ]]; then echo "no manifest lists graph variants: none measured"; fi
while IFS=$'\t' read -r model role name file; do
  [[ -n "$file" ]] || continue
  for device in "${devices[@]}"; do
    [[ $device == webgpu ]] && continue
    extra=(); [[ $device == cpu ]] || extra=("${peaks[@]}")
    timeout "$(cap 60)" node dist/loadtest/device-probe.js --device "$device" --model "$file" --batch "$batches" --runs "$runs" "${extra[@]}" \
      --json-out "${run}/variants/probe-${device}-${model}-${role}-${name}.json" || fail "variant ${model} ${role} ${name} on ${device}"
  done
done <"${run}/variants.tsv"

# --- 5. one JSON, the tables -------------------------------------------------------------
step "gpu-run.json and tables.md"
[[ -f "${run}/check/server.log" ]] && cp "${run}/check/server.log" "${out}/server.log"
node dist/loadtest/device-table.js --merge "$run" --json-out "${out}/gpu-run.json" --failures "$failures" || fail "merging the JSON"
node dist/loadtest/device-table.js --run "${out}/gpu-run.json" | tee "${out}/tables.md" || fail "building the tables"
echo
echo "gpu-run (${mode}) took $(( $(date +%s) - started )) s; ${failures} failed step(s)"
[[ $failures == 0 ]]
