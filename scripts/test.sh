#!/usr/bin/env bash
# Installs what is missing, builds lopa and its tests, and runs every test (README command 2; CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 "$@"
