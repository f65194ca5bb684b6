#!/usr/bin/env bash
# Re-resolve requirements/lock.txt: the exact versions that scripts/setup.sh and CI install.
# Run it on purpose (a new dependency, a deliberate upgrade), then run the test suite on a fresh
# clone before committing the new lock. pyproject.toml keeps the ranges for library users.
#
# torch is left out of the lock: setup.sh installs torch==2.13.0 first, the CPU build (PyPI's
# default Linux wheel is the multi-GB CUDA one); the lock pins torch's own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
if [ ! -x .venv/bin/uv ] || [ "$(.venv/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" > "$constraints"
# --find-links: a machine that keeps the CPU torch wheel locally resolves against it.
find_links=()
if [ -n "${PIP_FIND_LINKS:-}" ]; then find_links=(--find-links "$PIP_FIND_LINKS"); fi
.venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 "${find_links[@]}" -c "$constraints" \
  --no-emit-package torch --no-emit-package emorec \
  --custom-compile-command "bash scripts/lock.sh" -o requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -c '^[a-zA-Z]' requirements/lock.txt) packages)"
