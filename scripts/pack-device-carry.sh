#!/usr/bin/env bash
# Packs what a GPU machine with no Node.js and no network needs to run scripts/gpu-check.sh, in
# parts small enough for the device tool, whose every call carries the whole working tree plus
# at most 64 MiB in all:
#   base.tar.xz           node (this machine's binary), the production node_modules with only
#                         linux/x64 native binaries, dist/, and Debian's libvulkan1 (43 MiB)
#   provider-sm90.tar.xz  the CUDA provider with GPU code for every architecture but sm_90
#                         (H100/H200) zeroed by scripts/prune-cuda-provider.py (37 MiB)
# Both go into one bundle, split into .devcarry/p1/ .. .devcarry/pN/, each part as large as a
# call can carry beside the tracked files (the models in models/zoo count). The parts pile up on
# the device machine across calls made while it stays warm; the last call joins them:
#   bash scripts/gpu-check.sh --bundle '.devcarry/p*/bundle.part*'
#
# usage: scripts/pack-device-carry.sh [--arch 90] [--limit-mib 64] [--leave-out a,b] [--check-only]
#          [--json FILE]
#   --leave-out   models/zoo models that will not travel (the caller hides them from the checkout
#                 the device tool sends, e.g. with git sparse-checkout): the tree is sized without them
#   --check-only  pack nothing: size what every call would carry (the tree, without the models
#                 left out, plus the largest part already in .devcarry/) against the limit
#   --json FILE   also write that size check as JSON (scripts/gpu-run.sh reads it)
# Run it in the checkout the device tool sends (the lead's), after `npm install`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARRY="${ROOT}/.devcarry"
arch=90; limit=64; leave_out=""; check_only=0; json=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="$2"; shift ;;
    --limit-mib) limit="$2"; shift ;;
    --leave-out) leave_out="$2"; shift ;;
    --check-only) check_only=1 ;;
    --json) json="$2"; shift ;;
    *) echo "pack-device-carry: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done
die() { echo "pack-device-carry: $*" >&2; exit 1; }
git check-ignore -q .devcarry/x || die ".devcarry/ is not git-ignored; add it to .gitignore"

# What travels with every call anyway: tracked files, untracked ones git does not ignore, shared/
# (the device tool's rule), less the models left out; bytes, summed by stat (du rounds to blocks).
left_out_re='^$'
if [[ -n "$leave_out" ]]; then
  left_out_re="^models/zoo/($(tr ',' '|' <<<"$leave_out"))/"
  for m in ${leave_out//,/ }; do [[ -d "models/zoo/${m}" ]] || die "--leave-out ${m}: no models/zoo/${m}"; done
fi
tree_bytes="$( { git ls-files -z --cached --others --exclude-standard; if [[ -d shared ]]; then find shared -type f -print0; fi; } |
  grep -zEv "$left_out_re" | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')"
tree_mib=$(( (tree_bytes + 1048575) / 1048576 ))
part_mib=$(( limit - tree_mib - 2 ))  # 2 MiB for rounding and the transfer's own bookkeeping
largest_part=0; parts=0
for part in "${CARRY}"/p*/bundle.part*; do
  [[ -f "$part" ]] || continue
  parts=$((parts + 1))
  sz=$(stat -c %s "$part"); (( sz > largest_part )) && largest_part=$sz
done
fits=$(( tree_bytes + largest_part + 2 * 1048576 <= limit * 1048576 ? 1 : 0 ))
echo "tree that travels: $(awk -v b="$tree_bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB (left out: ${leave_out:-none}); parts in .devcarry: ${parts}, largest $(( largest_part / 1048576 )) MiB; limit ${limit} MiB per call: $([[ $fits == 1 ]] && echo fits || echo 'DOES NOT FIT')"
if [[ -n "$json" ]]; then
  printf '{"limitMiB":%s,"treeBytes":%s,"leftOut":"%s","parts":%s,"largestPartBytes":%s,"perCallBytes":%s,"fits":%s}\n' \
    "$limit" "$tree_bytes" "$leave_out" "$parts" "$largest_part" "$(( tree_bytes + largest_part ))" "$([[ $fits == 1 ]] && echo true || echo false)" >"$json"
fi
if [[ $check_only == 1 ]]; then [[ $fits == 1 ]]; exit; fi
[[ $part_mib -ge 4 ]] || die "the working tree alone is ${tree_mib} MiB of the ${limit} MiB a call carries: nothing fits beside it (--leave-out some models/zoo models)"
[[ "$(uname -m)" == x86_64 ]] || die "must run on x86_64 (the GPU machine is x86_64)"
[[ "$(node -p 'process.versions.node.split(".")[0]')" == 20 ]] || die "node on PATH is not Node 20"

export XZ_OPT="${XZ_OPT:--6 -T2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "${work}/bundle"

# --- base: node, production node_modules, dist, the Vulkan loader ----------------------------
npm run build --silent
stage="${work}/base"
mkdir -p "${stage}/bin" "${stage}/debs"
cp "$(command -v node)" "${stage}/bin/node"
# Production dependencies only, each package once (a parent folder already holds its children).
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^${ROOT}/||" | grep '^node_modules/' | sort -u |
  awk 'prev == "" || index($0, prev "/") != 1 { print; prev = $0 }' >"${work}/pkgs"
[[ -s "${work}/pkgs" ]] || die "npm ls listed no production packages (run npm install)"
# The GPU run's serving checks use the official openai client (a dev dependency; it needs none).
[[ -d node_modules/openai ]] && echo node_modules/openai >>"${work}/pkgs"
tar -cf - -T "${work}/pkgs" | tar -xf - -C "$stage"
cp -a dist "${stage}/dist"
# Native code for other platforms, Node ABIs other than 115 (Node 20), docs and typings.
ort="${stage}/node_modules/onnxruntime-node/bin/napi-v6"
[[ -d "$ort" ]] && find "$ort" -mindepth 2 -maxdepth 2 -type d ! -path "$ort/linux/x64" -exec rm -rf {} +
find "${stage}/node_modules" -type f -name '*.node' \
  \( -iregex '.*\(darwin\|win32\|android\|freebsd\|arm64\|arm\|ia32\|musl\).*' -o -regex '.*_\(93\|108\|127\|131\)\.node' \) -delete
find "${stage}/node_modules" -type f \( -name '*.md' -o -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
# The provider travels on its own, pruned.
rm -f "${ort}/linux/x64/"libonnxruntime_providers_* "${ort}/linux/x64/dlm-cuda-provider.txt"
if ! (cd "${stage}/debs" && apt-get download libvulkan1 >/dev/null 2>&1); then
  echo "pack-device-carry: warning: apt-get download libvulkan1 failed (apt-get update first?); gpu-check will skip WebGPU" >&2
fi
nice -n 10 tar -cJf "${work}/bundle/base.tar.xz" -C "$stage" .
echo "base: $(du -m "${work}/bundle/base.tar.xz" | cut -f1) MiB (node $(node -v), $(wc -l <"${work}/pkgs") packages, dist/)"

# --- the CUDA provider, pruned to one GPU architecture ---------------------------------------
libdir="$(bash scripts/install-cuda.sh --fetch-only --cache "${ROOT}/.work/cuda-provider" | tail -n1)"
pkgdir="$(cd "${libdir}/../../.." && pwd)"
stage="${work}/provider"
mkdir -p "${stage}/package/Plugins/Linux/x64"
cp "${pkgdir}/package.json" "${pkgdir}/LICENSE" "${stage}/package/"
cp "${libdir}/libonnxruntime_providers_shared.so" "${stage}/package/Plugins/Linux/x64/"
python3 scripts/prune-cuda-provider.py "${libdir}/libonnxruntime_providers_cuda.so" \
  "${stage}/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so" "$arch"
echo "Pruned by scripts/prune-cuda-provider.py: GPU code for architectures other than sm_${arch} is zeroed. For test machines only." \
  >"${stage}/package/PRUNED.txt"
nice -n 10 tar -cJf "${work}/bundle/provider-sm${arch}.tar.xz" -C "$stage" package
echo "provider: sm_${arch} only, $(du -m "${work}/bundle/provider-sm${arch}.tar.xz" | cut -f1) MiB"

# --- one bundle, in parts that fit beside the tree -------------------------------------------
tar -cf "${work}/bundle.tar" -C "${work}/bundle" .
rm -rf "${CARRY}" && mkdir -p "${CARRY}"
split -b "${part_mib}M" -d -a 2 "${work}/bundle.tar" "${work}/bundle.part"
n=0
for part in "${work}"/bundle.part*; do
  n=$((n + 1))
  mkdir -p "${CARRY}/p${n}"
  mv "$part" "${CARRY}/p${n}/"
done
echo "bundle: $(du -m "${work}/bundle.tar" | cut -f1) MiB in ${n} parts of at most ${part_mib} MiB (the tree that travels with every call: ${tree_mib} MiB)"
echo
echo "On the device machine, ${n} calls in a row while it stays warm (it is given back 30 s after a call):"
for ((i = 1; i < n; i++)); do
  echo "  call ${i}: carry [\".devcarry/p${i}\"]  command: ls -l .devcarry/*"
done
echo "  call ${n}: carry [\".devcarry/p${n}\"]  command: bash scripts/gpu-run.sh --bundle '.devcarry/p*/bundle.part*' 2>&1"
echo "  (or, for the device checks alone: bash scripts/gpu-check.sh --bundle '.devcarry/p*/bundle.part*' 2>&1)"
