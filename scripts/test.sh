#!/usr/bin/env bash
# Installs what is missing, builds lopa and its tests, and runs every test (README command 2; CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
# Tests run two at a time, several with mpirun ranks: OpenMP threads that spin-wait for the cores
# would starve each other (OpenMP reads this before main, so lopa cannot set it itself).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --test-dir build --output-on-failure -j2 "$@"
