#!/usr/bin/env bash
# lopa bench train|generate vs the PyTorch-eager references (bench/train_ref.py, bench/llama_ref.py),
# side by side in one run, alternating R rounds and keeping each side's best median: stories260K and
# random-init ~10M and ~100M Llama configs (lopa init-model). One JSON line per comparison on stdout.
# tp = 2 runs on the 100M config (the 10M one has 5 heads). Both sides use THREADS threads (OMP_NUM_THREADS and torch.set_num_threads / LibTorch intra-op) and
# OMP_WAIT_POLICY=PASSIVE unless set (spin-waiting OpenMP barriers collapse on shared cores).
#   bash bench/run_train_bench.sh [BUILD_DIR] [ROUNDS] [THREADS]    (defaults: build, 2, 2)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
rounds="${2:-2}"
threads="${3:-2}"
lopa="$build/bin/lopa"
shared="$here/../shared"
work="${LOPA_BENCH_WORK:-$(mktemp -d)}"
[ -n "${LOPA_BENCH_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
cmp() { /usr/bin/python3 "$here/bench/compare_train.py" "$@" --lopa "$lopa" --rounds "$rounds" --threads "$threads"; }

source "$here/bench/llama_configs.sh"
make_llama llama10m 8192 320 864 6 5 5
make_llama llama100m 32000 768 2048 12 12 4
echo "# $(uptime)" >&2

s260k="$shared/models/stories260K"
for method in lopa pt lora; do
  cmp train --model "$s260k" --method "$method" --batch-size 8 --seq-len 128 --steps 5
  cmp train --model "$work/llama10m" --method "$method" --batch-size 4 --seq-len 128 --steps 3 --targets-ref
  cmp train --model "$work/llama100m" --method "$method" --batch-size 2 --seq-len 256 --steps 2
done
cmp generate --model "$s260k" --prompt-len 64 --new-tokens 128
cmp generate --model "$work/llama10m" --prompt-len 64 --new-tokens 64

cmp tp --model "$work/llama100m" --method lopa --batch-size 2 --seq-len 256 --steps 2
echo "# $(uptime)" >&2
