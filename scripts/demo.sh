#!/usr/bin/env bash
# Installs what is missing, builds lopa, and runs the embedded default (README command 1): `lopa demo`
# pretrains a tiny FM on a synthetic language (cached under ~/.cache/lopa), sweeps PT / IDPG / LoPA /
# LoRA x 2 seeds on its synth-facts task with 2-rank cells, prints the table and writes the plot.
# Arguments go to `lopa demo` (e.g. --out DIR, --steps N).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target lopa
# The demo runs several processes at once on few cores: OpenMP threads must sleep, not spin, while
# they wait (OpenMP reads this before main, so lopa cannot set it itself).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
./build/bin/lopa demo "$@"
