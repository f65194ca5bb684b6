#!/usr/bin/env bash
# Debian packages used by the test suite and the service: PostgreSQL, Redis, headless Chromium
# (+ its driver), wrk for the load-test benchmark, and qemu-user, whose CPU emulation runs the int8
# model as a CPU without VNNI would (tests/test_export.py). Needs root (or sudo); skips what is present.
set -euo pipefail
packages=(postgresql redis-server chromium chromium-driver wrk qemu-user)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
