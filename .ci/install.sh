#!/usr/bin/env bash
# Installs everything into .venv from scratch: torch + torchvision, then bench with its dev tools.
# TORCH_PACKAGES overrides the torch pair (this project's machines hold torch 2.14.1 / torchvision 0.29.1
# on disk; PyPI's own torchvision does not import beside the CPU-only torch file that is also there).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_PACKAGES=${TORCH_PACKAGES:-"torch==2.14.1 torchvision==0.29.1"}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_PACKAGES 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, torchvision, art, bench; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__, '| ART', art.__version__)"

# Fashion-MNIST where Debian puts it (optional: the tests that need it skip without it).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
    || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"
fi
