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

mk() {  # name vocab d F layers heads kv
  [ -f "$work/$1/model.safetensors" ] && return
  cat > "$work/$1.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": $2, "hidden_size": $3,
 "intermediate_size": $4, "num_hidden_layers": $5, "num_attention_heads": $6, "num_key_value_heads": $7,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
JSON
  "$lopa" init-model --config "$work/$1.json" --out "$work/$1" --tokenizer "$shared/models/stories260K" --seed 0 >&2
}
mk llama10m 8192 320 864 6 5 5
mk llama100m 32000 768 2048 12 12 4
echo "# $(uptime)" >&2
cmp --model "$shared/models/stories260K" --prompt-len 64 --new-tokens 128
cmp --model "$work/llama10m" --prompt-len 64 --new-tokens 64
cmp --model "$work/llama100m" --prompt-len 128 --new-tokens 32
echo "# $(uptime)" >&2
