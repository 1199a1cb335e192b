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
./build/bin/lopa demo "$@"
