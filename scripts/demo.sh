#!/usr/bin/env bash
# Set up .venv if needed, write scikit-image's sample photos to samples/photos/ and cartoonize
# them into samples/cartoons/. Weights: pretrained/ if it holds a checkpoint, else the authors'
# checkpoint, downloaded once into the user cache (see pretrained/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/sample_photos.py samples/photos
.venv/bin/python cartoonize.py --input samples/photos --output samples/cartoons --format png "$@"
echo "cartoons are in samples/cartoons/"
