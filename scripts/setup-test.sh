#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the Node packages
# (from package-lock.json) and the Python toolchain of models/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash models/setup.sh
npm ci --no-audit --no-fund
