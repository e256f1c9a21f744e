#!/usr/bin/env bash
# Make sure uv is available: on PATH, or installed with pip (as the Makefile then calls it, `python3 -m uv`).
set -euo pipefail
if command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1; then
    exit 0
fi
echo "uv not found; installing it with pip"
python3 -m pip install --quiet --disable-pip-version-check uv \
    || python3 -m pip install --quiet --disable-pip-version-check --user uv \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages uv
python3 -m uv --version
