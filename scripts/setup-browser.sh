#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/browser-chat.test.ts drives it through
# playwright-core, which downloads no browser of its own). Needs root or passwordless sudo; a
# machine that already has /usr/bin/chromium is left alone.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
