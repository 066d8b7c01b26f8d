#!/usr/bin/env bash
# Installs everything the project needs (CPU or CUDA machine). Run from the repository root.
set -euo pipefail
python -m pip install --upgrade pip >/dev/null
python -m pip install "torch==2.14.1" "torchvision==0.29.1"
python -m pip install numpy opencv-python-headless pycocotools easydict tqdm av matplotlib pytest hypothesis tensorboard
