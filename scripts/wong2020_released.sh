#!/usr/bin/env bash
# Wong, Rice and Kolter 2020's released FGSM-RS MNIST model, evaluated by vu2018's cells as our own models are:
# PGD k=100 (step 0.01, eps 0.3), margin PGD and Square, on the same images. It tells whether our attacks read
# their model as they do (their README: PGD-50 with 10 restarts, step 0.01) apart from how we train.
#   bash scripts/wong2020_released.sh path/to/fgsm.pth [out-folder]
# fgsm.pth is MNIST/models/fgsm.pth of github.com/locuslab/fast_adversarial (a plain PyTorch state dict of their
# nn.Sequential: layers 0, 2, 5, 7). It is read with weights_only=True and written as safetensors with our
# layer names (models.architectures.small_cnn_classifier), so bench evaluate never unpickles anything.
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=$1 out=${2:-reports/wong2020/mnist}
mkdir -p "$out"
weights=$(mktemp --suffix .safetensors)  # their weights stay out of the repository
.venv/bin/python - "$checkpoint" "$weights" <<'PY'
import sys

import torch
from safetensors.torch import save_file

theirs = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
ours = {"0": "0.conv1", "2": "0.conv2", "5": "0.fc1", "7": "1"}
save_file({f"{ours[k.split('.')[0]]}.{k.split('.')[1]}": v.contiguous() for k, v in theirs.items()}, sys.argv[2])
PY
.venv/bin/bench evaluate --dataset mnist --factory models.architectures:small_cnn_classifier \
  --weights "$weights" --name wong2020_fgsm_rs --preset bench/matrix/presets/vu2018_small.toml \
  --no-progress --out "$out/store" --reports-dir "$(dirname "$out")"
