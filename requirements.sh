#!/usr/bin/env bash
# Installs everything the project needs (CPU or CUDA machine), and the project itself in editable
# mode, so that its scripts run from any folder. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --upgrade pip >/dev/null
# Pinned first: an unpinned torch would pull a newer CUDA build of several GB.
python -m pip install "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -e ".[test,tensorboard]"
