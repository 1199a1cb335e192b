#!/usr/bin/env bash
# Installs what is missing, builds lopa, and runs the embedded default (README command 1): `lopa demo`
# pretrains a tiny FM on a synthetic language (cached under ~/.cache/lopa), sweeps PT / IDPG / LoPA /
# LoRA, each over its own 3 learning rates x 4 seeds, on its synth-facts task, selects each method's
# rate on dev, prints test accuracy (mean ± std, paired comparisons) and writes the plot.
# Arguments go to `lopa demo` (e.g. --out DIR, --steps N, --lr lopa=0.01,0.003).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
echo "demo.sh: building lopa ($(date -u +%T) UTC)"
cmake --build build -j2 --target lopa
echo "demo.sh: built ($(date -u +%T) UTC)"
# The demo runs several processes at once on few cores: OpenMP threads must sleep, not spin, while
# they wait (OpenMP reads this before main, so lopa cannot set it itself).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
./build/bin/lopa demo "$@"
