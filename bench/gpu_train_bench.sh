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

if [[ $size == 1b ]]; then
  dims='"vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
 "num_attention_heads": 32, "num_key_value_heads": 4'
  batch=8 seq=512 steps=5
else
  dims='"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2'
  batch=2 seq=64 steps=2
fi
model="$work/llama-$size"
if [[ ! -f $model/model.safetensors ]]; then
  cat > "$work/llama-$size.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", $dims,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
JSON
  "$lopa" init-model --config "$work/llama-$size.json" --out "$model" --tokenizer "$shared/models/stories260K" --seed 0 >&2
fi
for method in pt lopa lora; do
  "$lopa" bench train --model "$model" --method "$method" --dtype bfloat16 --device "$device" \
    --batch-size $batch --seq-len $seq --steps $steps --json
done
