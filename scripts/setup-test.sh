#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the Node packages
# (from package-lock.json), the Python toolchain of models/, Chromium for the browser tests and
# buildah for the image test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash models/setup.sh
bash scripts/setup-browser.sh
# buildah builds and runs the CPU image without a Docker engine (test/image-cpu.test.ts).
command -v buildah >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah; } \
  || echo "setup-test: no buildah: the CPU image test will be skipped"
# Exactly the tree in package-lock.json (it records every platform's optional native addons, so
# npm ci accepts it on any machine).
npm ci --no-audit --no-fund
# A CPU Vulkan driver (lavapipe, mesa 25) under .work/ so that the WebGPU tests run for real
# here; where it cannot be set up they report themselves skipped.
bash scripts/setup-lavapipe.sh || echo "setup-test: no lavapipe: the WebGPU-on-CPU tests will be skipped"
