#!/usr/bin/env bash
# The model toolchain's tests: Python (pytest, models/tests) then the Node-side checks of exported
# graphs (parity with PyTorch through onnxruntime-node, every zoo model loads).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd models && /usr/bin/python3 -m pytest -q tests)
npm run build --silent
node --test --test-concurrency=1 dist/test/models-parity.test.js dist/test/block-parity.test.js dist/test/approx-kv-parity.test.js dist/test/block-convert.test.js dist/test/e2d2-convert.test.js dist/test/duo-convert.test.js dist/test/models-convert.test.js dist/test/duo-parity.test.js dist/test/models-zoo.test.js
