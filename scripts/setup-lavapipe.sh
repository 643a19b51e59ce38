#!/usr/bin/env bash
# A CPU Vulkan driver for WebGPU tests on machines without a GPU, installed privately under
# .work/lavapipe (nothing in the system changes). Dawn, the WebGPU implementation inside
# onnxruntime-node, refuses Debian 12's own lavapipe (mesa 22.3: "shaderUniform*ArrayDynamicIndexing
# required") but accepts mesa 25 from bookworm-backports. The packages come from Debian's
# archive through apt, with a private source list and package lists.
#
# usage: scripts/setup-lavapipe.sh      then: source .work/lavapipe/env
# The env file sets VK_DRIVER_FILES and LD_LIBRARY_PATH; the loader reads LD_LIBRARY_PATH at
# process start, so the tests pass it to a child process. Exit 0 ready, 1 not possible here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ROOT}/.work/lavapipe"
LIBDIR="${DIR}/root/usr/lib/x86_64-linux-gnu"
say() { echo "setup-lavapipe: $*"; }

if [[ -f "${DIR}/env" && -f "${LIBDIR}/libvulkan_lvp.so" ]]; then
  say "already set up in ${DIR}"
  exit 0
fi
# shellcheck disable=SC1091
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
if [[ "$codename" != bookworm || "$(uname -m)" != x86_64 ]]; then
  say "only set up on Debian 12 (bookworm) x86_64; this is '${codename:-unknown}' $(uname -m)"
  exit 1
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { say "needs apt-get and dpkg"; exit 1; }

rm -rf "$DIR" && mkdir -p "${DIR}/lists/partial" "${DIR}/debs" "${DIR}/root"
printf '%s\n' "deb http://deb.debian.org/debian bookworm main" "deb http://deb.debian.org/debian bookworm-backports main" >"${DIR}/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=${DIR}/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=${DIR}/lists"
  -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq
(
  cd "${DIR}/debs"
  apt-get "${apt_opts[@]}" download -qq mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports \
    libdrm-amdgpu1/bookworm-backports libvulkan1/bookworm
)
for deb in "${DIR}"/debs/*.deb; do dpkg -x "$deb" "${DIR}/root"; done
[[ -f "${LIBDIR}/libvulkan_lvp.so" && -f "${LIBDIR}/libvulkan.so.1" ]] || { say "the packages did not hold lavapipe and the loader"; exit 1; }

missing="$(LD_LIBRARY_PATH="$LIBDIR" ldd "${LIBDIR}/libvulkan_lvp.so" | grep 'not found' || true)"
if [[ -n "$missing" ]]; then
  say "lavapipe needs libraries this machine lacks:"
  echo "$missing"
  exit 1
fi
cat >"${DIR}/lvp_icd.json" <<EOF
{ "file_format_version": "1.0.0", "ICD": { "library_path": "${LIBDIR}/libvulkan_lvp.so", "api_version": "1.4.305" } }
EOF
cat >"${DIR}/env" <<EOF
export VK_DRIVER_FILES=${DIR}/lvp_icd.json
export LD_LIBRARY_PATH=${LIBDIR}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
EOF
say "ready: source ${DIR}/env"
