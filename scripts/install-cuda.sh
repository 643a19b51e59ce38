#!/usr/bin/env bash
# Installs ONNX Runtime's CUDA execution provider beside onnxruntime-node, from the npm
# registry only, and says exactly what a machine still lacks to run `--device cuda`.
#
# onnxruntime-node ships CPU and WebGPU on Linux but not CUDA. The provider libraries built for
# the same ONNX Runtime release are published on npm as a Unity package; they load only into
# the exact ONNX Runtime version they were built with, so the pairing below is pinned.
#
# usage: scripts/install-cuda.sh [--check] [--from PATH] [--cache DIR] [--ort-package DIR]
#                                [--skip-lib-check] [--print-env]
#   --check           change nothing; report whether the provider is installed and which CUDA
#                     libraries are found (exit 0 only when --device cuda can load)
#   --from PATH       use an already-downloaded provider: the npm tarball (.tgz), or a directory
#                     holding its package.json (or package/package.json)
#   --cache DIR       where the npm tarball is downloaded and unpacked (default .work/cuda-provider)
#   --ort-package DIR onnxruntime-node's package directory (default node_modules/onnxruntime-node;
#                     env DLM_ORT_PACKAGE)
#   --skip-lib-check  install only; do not look for the CUDA libraries (image builds, where the
#                     libraries come from another stage)
#   --skip-driver     do not require libcuda.so.1 (image builds: the driver is mounted at run time)
#   --fetch-only      download, verify and unpack the provider into the cache, keep the npm
#                     tarball there, print the unpacked folder, and change nothing else
#   --print-env       print only `export LD_LIBRARY_PATH=...` adding the folders where CUDA
#                     libraries were found off the loader's path (for eval)
# exit: 0 ready; 1 usage, version or integrity error; 3 provider installed but CUDA libraries
#       missing or off the loader's path; 4 (--check) provider not installed or not matching.
#       --print-env exits 0 whatever it found.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROVIDER_PKG="com.github.asus4.onnxruntime.linux-x64-gpu"
MARKER="dlm-cuda-provider.txt"

# onnxruntime-node version -> provider package version and the npm tarball's integrity.
# Add a row only after checking that the provider's embedded version equals the ORT version.
compat_row() {
  case "$1" in
    1.29.0) echo "0.4.9 sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==" ;;
    *) return 1 ;;
  esac
}
KNOWN_ORT_VERSIONS="1.29.0"

# Libraries the provider links against (readelf -d NEEDED), as "soname|what|Debian/Ubuntu package|pip package".
REQUIRED_LIBS=(
  "libcudart.so.13|CUDA 13 runtime (cudart)|cuda-cudart-13-0|nvidia-cuda-runtime"
  "libcublas.so.13|CUDA 13 cuBLAS|libcublas-13-0|nvidia-cublas"
  "libcublasLt.so.13|CUDA 13 cuBLASLt (part of cuBLAS)|libcublas-13-0|nvidia-cublas"
  "libcurand.so.10|CUDA 13 cuRAND|libcurand-13-0|nvidia-curand"
)
DRIVER_LIB="libcuda.so.1"
# Loaded on demand by some operators only (convolutions); a missing one is a warning.
OPTIONAL_LIBS=("libcudnn.so.9|cuDNN 9 (convolutions only)|libcudnn9-cuda-13|nvidia-cudnn-cu13")

mode=install
from=""
cache="${ROOT}/.work/cuda-provider"
ort_pkg="${DLM_ORT_PACKAGE:-${ROOT}/node_modules/onnxruntime-node}"
lib_check=1
driver_check=1
print_env=0

die() { echo "install-cuda: error: $*" >&2; exit 1; }
say() { [[ $print_env == 1 ]] || echo "install-cuda: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) mode=check ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a path"; from="$2"; shift ;;
    --cache) [[ $# -ge 2 ]] || die "--cache needs a directory"; cache="$2"; shift ;;
    --ort-package) [[ $# -ge 2 ]] || die "--ort-package needs a directory"; ort_pkg="$2"; shift ;;
    --skip-lib-check) lib_check=0 ;;
    --skip-driver) driver_check=0 ;;
    --print-env) print_env=1; mode=check ;;
    --fetch-only) mode=fetch ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# "version": "x.y.z" from a package.json, without needing node or jq on the machine.
json_version() {
  sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n1
}
json_name() {
  sed -n 's/^[[:space:]]*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n1
}
# Version strings x.y.z standing alone among a binary's printable runs (no binutils needed).
embedded_versions() {
  { LC_ALL=C tr -c '[:print:]' '\n' <"$1" | grep -xE '(VERS_)?1\.[0-9]+\.[0-9]+' | sed 's/^VERS_//' | sort -u; } || true
}
# Whether binary $1 carries version $2 (collected first: grep -q would cut the pipe short).
carries_version() {
  local found
  found="$(embedded_versions "$1")"
  grep -qxF "$2" <<<"$found"
}
sha512_integrity() {
  if command -v node >/dev/null 2>&1; then
    node -e 'const c=require("crypto"),f=require("fs");console.log("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
  elif command -v openssl >/dev/null 2>&1; then
    echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import base64,hashlib,sys; print("sha512-"+base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$1"
  else
    echo "unknown"
  fi
}

[[ "$(uname -s)" == Linux && "$(uname -m)" == x86_64 ]] ||
  die "the CUDA provider on npm is built for Linux x86_64 only (this is $(uname -s) $(uname -m))"

# --- onnxruntime-node: its version, from its manifest and from the library itself -------------
[[ -f "${ort_pkg}/package.json" ]] ||
  die "onnxruntime-node not found at ${ort_pkg} (run npm install first, or pass --ort-package)"
ort_version="$(json_version "${ort_pkg}/package.json")"
ort_bin="${ort_pkg}/bin/napi-v6/linux/x64"
[[ -f "${ort_bin}/libonnxruntime.so.1" ]] ||
  die "${ort_bin}/libonnxruntime.so.1 is missing: onnxruntime-node ${ort_version} has no linux/x64 binaries here"
if ! carries_version "${ort_bin}/libonnxruntime.so.1" "${ort_version}"; then
  die "onnxruntime-node's package.json says ${ort_version} but libonnxruntime.so.1 does not carry that version"
fi
if ! row="$(compat_row "${ort_version}")"; then
  die "onnxruntime-node ${ort_version} has no known CUDA provider on npm; known: ${KNOWN_ORT_VERSIONS} (package.json pins onnxruntime-node exactly for this reason)"
fi
provider_version="${row%% *}"
provider_integrity="${row#* }"
say "onnxruntime-node ${ort_version} (${ort_bin}) needs ${PROVIDER_PKG}@${provider_version}"

# --- where the installed provider stands ---------------------------------------------------
installed_state() {
  local f
  for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    [[ -f "${ort_bin}/${f}" ]] || { echo "missing ${f}"; return; }
  done
  if ! carries_version "${ort_bin}/libonnxruntime_providers_cuda.so" "${ort_version}"; then
    echo "mismatch: ${ort_bin}/libonnxruntime_providers_cuda.so was not built for ONNX Runtime ${ort_version}"; return
  fi
  echo ok
}

# Checks one unpacked provider package; prints the folder with its .so files.
verify_provider_dir() {
  local dir="$1" pj
  if [[ -f "${dir}/package.json" ]]; then pj="${dir}/package.json"
  elif [[ -f "${dir}/package/package.json" ]]; then dir="${dir}/package"; pj="${dir}/package.json"
  else die "${1}: no package.json (expected the unpacked ${PROVIDER_PKG} package)"; fi
  local name version
  name="$(json_name "$pj")"; version="$(json_version "$pj")"
  [[ "$name" == "$PROVIDER_PKG" ]] || die "${pj}: package is '${name}', expected ${PROVIDER_PKG}"
  [[ "$version" == "$provider_version" ]] ||
    die "provider ${PROVIDER_PKG}@${version} does not match onnxruntime-node ${ort_version}, which needs ${provider_version}"
  local libdir="${dir}/Plugins/Linux/x64" f
  for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    [[ -f "${libdir}/${f}" ]] || die "${libdir}/${f} is missing from the provider package"
  done
  if ! carries_version "${libdir}/libonnxruntime_providers_cuda.so" "${ort_version}"; then
    die "${libdir}/libonnxruntime_providers_cuda.so was not built for ONNX Runtime ${ort_version} (found: $(embedded_versions "${libdir}/libonnxruntime_providers_cuda.so" | tr '\n' ' '))"
  fi
  echo "$libdir"
}

unpack_tarball() {
  local tgz="$1" actual
  actual="$(sha512_integrity "$tgz")"
  if [[ "$actual" == unknown ]]; then
    say "warning: no node, openssl or python3 here; the tarball's integrity is not checked" >&2
  elif [[ "$actual" != "$provider_integrity" ]]; then
    die "${tgz}: integrity ${actual:0:30}... is not the published ${PROVIDER_PKG}@${provider_version} (${provider_integrity:0:30}...)"
  fi
  local dest="${cache}/${provider_version}"
  rm -rf "${dest}.tmp" && mkdir -p "${dest}.tmp"
  tar -xzf "$tgz" -C "${dest}.tmp"
  rm -rf "$dest" && mv "${dest}.tmp" "$dest"
  echo "$dest"
}

provider_ok=0
keep_tgz=0
[[ $mode == fetch ]] && keep_tgz=1
if [[ $mode == install || $mode == fetch ]]; then
  if [[ -n "$from" ]]; then
    if [[ -d "$from" ]]; then src="$(verify_provider_dir "$from")"
    elif [[ -f "$from" ]]; then src="$(verify_provider_dir "$(unpack_tarball "$from")")"
    else die "--from ${from}: no such file or directory"; fi
  elif [[ $mode == install && "$(installed_state)" == ok ]]; then
    src="$ort_bin"  # already in place and matching: nothing to download
  elif [[ -f "${cache}/${provider_version}/package/package.json" ]]; then
    say "using the provider already unpacked in ${cache}/${provider_version}"
    src="$(verify_provider_dir "${cache}/${provider_version}")"
  else
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH; download ${PROVIDER_PKG}@${provider_version} elsewhere and pass --from TARBALL"
    mkdir -p "$cache"
    say "downloading ${PROVIDER_PKG}@${provider_version} from the npm registry (~180 MB)"
    tgz_name="$(cd "$cache" && npm pack --silent "${PROVIDER_PKG}@${provider_version}" 2>/dev/null | tail -n1)"
    [[ -n "$tgz_name" && -f "${cache}/${tgz_name}" ]] || die "npm pack ${PROVIDER_PKG}@${provider_version} failed"
    src="$(verify_provider_dir "$(unpack_tarball "${cache}/${tgz_name}")")"
    [[ $keep_tgz == 1 ]] || rm -f "${cache}/${tgz_name}"
  fi
  if [[ $mode == fetch ]]; then
    echo "$src"
    exit 0
  fi
  copied=0
  for f in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
    if ! cmp -s "${src}/${f}" "${ort_bin}/${f}" 2>/dev/null; then
      cp "${src}/${f}" "${ort_bin}/${f}.tmp" && mv "${ort_bin}/${f}.tmp" "${ort_bin}/${f}"
      copied=1
    fi
  done
  echo "${PROVIDER_PKG}@${provider_version} for onnxruntime-node ${ort_version}" >"${ort_bin}/${MARKER}"
  if [[ $copied == 1 ]]; then say "installed the CUDA provider into ${ort_bin}"
  else say "the CUDA provider is already installed in ${ort_bin}"; fi
  provider_ok=1
else
  state="$(installed_state)"
  if [[ "$state" == ok ]]; then
    provider_ok=1
    say "CUDA provider installed in ${ort_bin}"
  else
    say "CUDA provider NOT installed: ${state} in ${ort_bin}; run: bash scripts/install-cuda.sh"
  fi
fi

[[ $lib_check == 1 ]] || exit 0

# --- CUDA libraries: found on the loader's path, found elsewhere, or missing ------------------
# DLM_CUDA_LOADER_DIRS / DLM_CUDA_EXTRA_DIRS (colon-separated) replace the folders searched
# below: the first stands for the loader's path, the second for places off it.
loader_dirs=()
ldcache=""
if [[ -n "${DLM_CUDA_LOADER_DIRS+set}" ]]; then
  IFS=':' read -r -a ld_dirs <<<"${DLM_CUDA_LOADER_DIRS}"
else
  IFS=':' read -r -a ld_dirs <<<"${LD_LIBRARY_PATH:-}"
  ldcache="$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true) | sed -n 's/.* => //p')"
fi
for d in "${ld_dirs[@]}"; do [[ -n "$d" ]] && loader_dirs+=("$d"); done

# Folders where CUDA libraries often sit without being on the loader's path: the toolkit, and
# the pip wheels (nvidia-*), whose layout is nvidia/<part>/lib or nvidia/cu13/lib.
extra_dirs=()
if [[ -n "${DLM_CUDA_EXTRA_DIRS+set}" ]]; then
  IFS=':' read -r -a ex_dirs <<<"${DLM_CUDA_EXTRA_DIRS}"
  for d in "${ex_dirs[@]}"; do [[ -n "$d" && -d "$d" ]] && extra_dirs+=("$d"); done
else
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/targets/x86_64-linux/lib \
    /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [[ -d "$d" ]] && extra_dirs+=("$d")
  done
  site_dirs=()
  if command -v python3 >/dev/null 2>&1; then
    while IFS= read -r d; do [[ -d "$d" ]] && site_dirs+=("$d"); done < <(python3 -c 'import site; print("\n".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null || true)
  fi
  for d in /usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /opt/*/.venv/lib/python3*/site-packages; do
    [[ -d "$d" ]] && site_dirs+=("$d")
  done
  for s in "${site_dirs[@]}"; do
    for d in "$s"/nvidia/*/lib "$s"/nvidia/cu13/lib; do [[ -d "$d" ]] && extra_dirs+=("$d"); done
  done
fi

# Prints "loader PATH", "off-path DIR" or "missing".
locate_lib() {
  local name="$1" d p
  for d in "${loader_dirs[@]}"; do [[ -e "$d/$name" ]] && { echo "loader $d/$name"; return; }; done
  p="$(grep -m1 "/${name}\$" <<<"$ldcache" || true)"
  [[ -n "$p" ]] && { echo "loader $p"; return; }
  for d in "${extra_dirs[@]}"; do [[ -e "$d/$name" ]] && { echo "off-path $d"; return; }; done
  echo missing
}

missing=()
add_dirs=()
report_lib() {
  local spec="$1" required="$2" name what deb pip where
  IFS='|' read -r name what deb pip <<<"$spec"
  where="$(locate_lib "$name")"
  case "$where" in
    loader*) say "  found    ${name}  ${what}: ${where#loader }" ;;
    off-path*)
      say "  off-path ${name}  ${what}: in ${where#off-path }, which the loader does not search"
      add_dirs+=("${where#off-path }") ;;
    missing)
      if [[ $required == 2 ]]; then
        say "  MISSING  ${name}  ${what}"
        missing+=("$name")
      elif [[ $required == 1 ]]; then
        say "  MISSING  ${name}  ${what}: install apt '${deb}' (NVIDIA's CUDA repository) or pip '${pip}', or use an nvidia/cuda:13.x runtime image"
        missing+=("$name")
      else
        say "  absent   ${name}  ${what}: optional"
      fi ;;
  esac
}
say "CUDA libraries the provider loads:"
for spec in "${REQUIRED_LIBS[@]}"; do report_lib "$spec" 1; done
for spec in "${OPTIONAL_LIBS[@]}"; do report_lib "$spec" 0; done
[[ $driver_check == 0 ]] || report_lib "${DRIVER_LIB}|NVIDIA driver: installed with the GPU driver (in containers, mounted by the NVIDIA container toolkit), not with CUDA||" 2

# De-duplicated folders to add to LD_LIBRARY_PATH, in the order found.
ld_add=""
for d in "${add_dirs[@]}"; do [[ ":${ld_add}:" == *":$d:"* ]] || ld_add="${ld_add:+$ld_add:}$d"; done
if [[ $print_env == 1 ]]; then
  [[ -n "$ld_add" ]] && echo "export LD_LIBRARY_PATH=${ld_add}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  exit 0
fi
if [[ -n "$ld_add" ]]; then
  say "some libraries are off the loader's path; before starting the server run:"
  say "  export LD_LIBRARY_PATH=${ld_add}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  say "  (or: eval \"\$(bash scripts/install-cuda.sh --print-env)\")"
fi
if [[ ${#missing[@]} -gt 0 || -n "$ld_add" ]]; then
  [[ ${#missing[@]} -gt 0 ]] && say "missing for --device cuda: ${missing[*]}"
  [[ $provider_ok == 1 ]] && exit 3 || exit 4
fi
[[ $provider_ok == 1 ]] || exit 4
say "ready: --device cuda can load its libraries"
