#!/usr/bin/env bash
# Packs what a GPU machine with no Node.js and no network needs to run scripts/gpu-check.sh,
# into git-ignored folders under .devcarry/, each small enough for one transfer (< 64 MiB with
# the working tree):
#   .devcarry/base/base.tar.xz       node (this machine's binary), the production node_modules
#                                    with only linux/x64 native binaries, dist/, and the Debian
#                                    libvulkan1 package (WebGPU needs the Vulkan loader)
#   .devcarry/cuda/provider-sm90.tar.xz
#                                    the CUDA provider package with every GPU architecture but
#                                    sm_90 (H100/H200) zeroed (scripts/prune-cuda-provider.py)
#   or, with --full-provider:        the untouched npm tarball split over .devcarry/cuda-p1..pN
#
# usage: scripts/pack-device-carry.sh [--full-provider] [--arch 90] [--no-base] [--no-provider]
# Run it in the checkout the device tool sends (the lead's), after `npm install`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARRY="${ROOT}/.devcarry"
PART_MIB=52
full=0; arch=90; base=1; provider=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --full-provider) full=1 ;;
    --arch) arch="$2"; shift ;;
    --no-base) base=0 ;;
    --no-provider) provider=0 ;;
    *) echo "pack-device-carry: unknown argument '$1'" >&2; exit 1 ;;
  esac
  shift
done
[[ "$(uname -m)" == x86_64 ]] || { echo "pack-device-carry: must run on x86_64 (the GPU machine is x86_64)" >&2; exit 1; }
git check-ignore -q .devcarry/x || { echo "pack-device-carry: .devcarry/ is not git-ignored; add it to .gitignore" >&2; exit 1; }
export XZ_OPT="${XZ_OPT:--6 -T2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mib() { du -sm "$1" | cut -f1; }

if [[ $base == 1 ]]; then
  node_bin="$(command -v node)"
  [[ "$(node -p 'process.versions.node.split(".")[0]')" == 20 ]] || { echo "pack-device-carry: node on PATH is not Node 20" >&2; exit 1; }
  npm run build --silent
  stage="${work}/base"
  mkdir -p "${stage}/bin" "${stage}/debs"
  cp "$node_bin" "${stage}/bin/node"
  # Production dependencies only, each package once (a parent folder already holds its children).
  npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^${ROOT}/||" | grep '^node_modules/' | sort -u |
    awk 'prev == "" || index($0, prev "/") != 1 { print; prev = $0 }' >"${work}/pkgs"
  [[ -s "${work}/pkgs" ]] || { echo "pack-device-carry: npm ls listed no production packages (run npm install)" >&2; exit 1; }
  tar -cf - -T "${work}/pkgs" | tar -xf - -C "$stage"
  cp -a dist "${stage}/dist"
  # Native code for other platforms, Node ABIs other than 115 (Node 20), docs and typings.
  ort="${stage}/node_modules/onnxruntime-node/bin/napi-v6"
  [[ -d "$ort" ]] && find "$ort" -mindepth 2 -maxdepth 2 -type d ! -path "$ort/linux/x64" -exec rm -rf {} +
  find "${stage}/node_modules" -type f -name '*.node' \
    \( -iregex '.*\(darwin\|win32\|android\|freebsd\|arm64\|arm\|ia32\|musl\).*' -o -regex '.*_\(93\|108\|127\|131\)\.node' \) -delete
  find "${stage}/node_modules" -type f \( -name '*.md' -o -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
  # The libonnxruntime_providers_* files are never packed here: the provider travels on its own.
  rm -f "${ort}/linux/x64/"libonnxruntime_providers_* "${ort}/linux/x64/dlm-cuda-provider.txt"
  if (cd "${stage}/debs" && apt-get download libvulkan1 >/dev/null 2>&1); then :; else
    echo "pack-device-carry: warning: apt-get download libvulkan1 failed (apt-get update first?); gpu-check will skip WebGPU" >&2
  fi
  rm -rf "${CARRY}/base" && mkdir -p "${CARRY}/base"
  nice -n 10 tar -cJf "${CARRY}/base/base.tar.xz" -C "$stage" .
  echo "base: $(mib "${CARRY}/base") MiB (node $(node -v), $(wc -l <"${work}/pkgs") packages, dist/)"
fi

if [[ $provider == 1 ]]; then
  cache="${ROOT}/.work/cuda-provider"
  libdir="$(bash scripts/install-cuda.sh --fetch-only --cache "$cache" | tail -n1)"
  pkgdir="$(cd "${libdir}/../../.." && pwd)"
  rm -rf "${CARRY}"/cuda "${CARRY}"/cuda-p*
  if [[ $full == 1 ]]; then
    tgz="$(ls "${cache}"/com.github.asus4.onnxruntime.linux-x64-gpu-*.tgz 2>/dev/null | tail -n1 || true)"
    if [[ -z "$tgz" ]]; then
      (cd "$cache" && npm pack --silent "com.github.asus4.onnxruntime.linux-x64-gpu@$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "${pkgdir}/package.json" | head -n1)" >/dev/null)
      tgz="$(ls "${cache}"/com.github.asus4.onnxruntime.linux-x64-gpu-*.tgz | tail -n1)"
    fi
    split -b "${PART_MIB}M" -d -a 1 "$tgz" "${work}/provider.tgz.part"
    n=0
    for part in "${work}"/provider.tgz.part*; do
      n=$((n + 1))
      mkdir -p "${CARRY}/cuda-p${n}"
      mv "$part" "${CARRY}/cuda-p${n}/"
    done
    echo "provider: the npm tarball in ${n} parts, .devcarry/cuda-p1 .. cuda-p${n} ($(mib "$tgz") MiB)"
  else
    stage="${work}/provider"
    mkdir -p "${stage}/package/Plugins/Linux/x64"
    cp "${pkgdir}/package.json" "${pkgdir}/LICENSE" "${stage}/package/"
    cp "${libdir}/libonnxruntime_providers_shared.so" "${stage}/package/Plugins/Linux/x64/"
    python3 scripts/prune-cuda-provider.py "${libdir}/libonnxruntime_providers_cuda.so" \
      "${stage}/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so" "$arch"
    echo "Pruned by scripts/prune-cuda-provider.py: GPU code for architectures other than sm_${arch} is zeroed. For test machines only." \
      >"${stage}/package/PRUNED.txt"
    mkdir -p "${CARRY}/cuda"
    nice -n 10 tar -cJf "${CARRY}/cuda/provider-sm${arch}.tar.xz" -C "$stage" package
    echo "provider: sm_${arch} only, $(mib "${CARRY}/cuda") MiB"
  fi
fi

tree_kib="$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -ck 2>/dev/null | tail -n1 | cut -f1)"
echo "working tree that travels with every call: $((tree_kib / 1024)) MiB"
for d in "${CARRY}"/*/; do
  total=$(( $(mib "$d") + tree_kib / 1024 ))
  flag=""; [[ $total -lt 64 ]] || flag="  <-- OVER the 64 MiB limit"
  echo "  carry $(basename "$d"): ${total} MiB with the tree${flag}"
done
