#!/usr/bin/env bash
# Prefill/decode throughput of `lopa bench generate` vs PyTorch eager with an HF-style KV cache
# (bench/llama_ref.py), side by side and alternating (bench/compare_train.py): stories260K (real) and
# random-init ~10M and ~100M-parameter Llamas made with `lopa init-model`. One JSON line each.
#   bash bench/run_generate_bench.sh [BUILD_DIR] [ROUNDS] [THREADS]   (defaults: build, 2, 2)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
rounds="${2:-2}"
threads="${3:-2}"
lopa="$build/bin/lopa"
shared="$here/../shared"
work="${LOPA_BENCH_WORK:-$(mktemp -d)}"
[ -n "${LOPA_BENCH_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
cmp() { /usr/bin/python3 "$here/bench/compare_train.py" generate "$@" --lopa "$lopa" --rounds "$rounds" --threads "$threads"; }

source "$here/bench/llama_configs.sh"
make_llama llama10m 8192 320 864 6 5 5
make_llama llama100m 32000 768 2048 12 12 4
echo "# $(uptime)" >&2
cmp --model "$shared/models/stories260K" --prompt-len 64 --new-tokens 128
cmp --model "$work/llama10m" --prompt-len 64 --new-tokens 64
cmp --model "$work/llama100m" --prompt-len 128 --new-tokens 32
echo "# $(uptime)" >&2
