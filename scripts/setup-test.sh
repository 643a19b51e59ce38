#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the Node packages
# (from package-lock.json), the Python toolchain of models/ and Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash models/setup.sh
bash scripts/setup-browser.sh
# Exactly the tree in package-lock.json (it records every platform's optional native addons, so
# npm ci accepts it on any machine).
npm ci --no-audit --no-fund
# A CPU Vulkan driver (lavapipe, mesa 25) under .work/ so that the WebGPU tests run for real
# here; where it cannot be set up they report themselves skipped.
bash scripts/setup-lavapipe.sh || echo "setup-test: no lavapipe: the WebGPU-on-CPU tests will be skipped"
