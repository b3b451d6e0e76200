#!/usr/bin/env bash
# Installs labelgraph into ./.venv (created if missing), with the test tools and the serving extra.
#
# torch/torchvision are installed first and pinned, so that pip never resolves a newer (multi-GB CUDA) build:
# the default pins are the builds this project is developed and tested with. Override with, e.g.,
#   LABELGRAPH_TORCH="torch==2.5.1 torchvision==0.20.1" bash install.sh
# Where apt-get is available (and we are root), the Debian package with Fashion-MNIST is installed too so the
# demo can use real photographs; without it the demo falls back to procedural shapes.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${LABELGRAPH_TORCH:-"torch==2.14.1 torchvision==0.29.1"}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -e ".[dev,glove,serve]"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }) \
    || echo "note: could not install dataset-fashion-mnist; the demo will use procedural shapes"
fi
# Debian's Chromium and its WebDriver: the serving tests open the web page in a headless browser (skipped without).
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }) \
    || echo "note: could not install chromium + chromium-driver; the browser test will be skipped"
fi
echo "labelgraph installed in $(pwd)/.venv"
