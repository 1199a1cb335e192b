#!/usr/bin/env bash
# bf16 train-step MFU of a ~1.1B-parameter Llama (TinyLlama-1.1B's shape, random weights made by
# `lopa init-model`) on one GPU, for PT, LoPA and LoRA: `lopa bench train --device cuda --dtype
# bfloat16`, whose peak is the card's bf16 8192³ matmul measured in the same run. One JSON line each.
#   bash bench/gpu_train_bench.sh [BUILD_DIR] [WORK_DIR]
# DEVICE=cpu SIZE=tiny runs the same script end to end on a CPU with a small config (a dry run).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
work="${2:-$(mktemp -d)}"
lopa="$build/bin/lopa"
device="${DEVICE:-cuda}"
size="${SIZE:-1b}"
shared="${LOPA_SHARED_DIR:-$here/../shared}"
[[ -d $shared/models/stories260K ]] || shared="$here/.gpu/shared"
mkdir -p "$work"

source "$here/bench/llama_configs.sh"
if [[ $size == 1b ]]; then
  make_llama llama-1b 32000 2048 5632 22 32 4 bfloat16 false
  batch=8 seq=512 steps=5
else
  make_llama llama-tiny 512 64 128 2 4 2 bfloat16 false
  batch=2 seq=64 steps=2
fi
model="$work/llama-$size"
for method in pt lopa lora; do
  "$lopa" bench train --model "$model" --method "$method" --dtype bfloat16 --device "$device" \
    --batch-size $batch --seq-len $seq --steps $steps --json
done
