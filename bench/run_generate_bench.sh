#!/usr/bin/env bash
# Prefill/decode throughput of the C++ runtime vs PyTorch eager (bench/llama_ref.py), measured side by
# side: stories260K (real) and a random-init ~100M-parameter Llama made with `lopa init-model`.
#   bash bench/run_generate_bench.sh [BUILD_DIR]   (default build)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
shared="$here/../shared"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat > "$work/config100m.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 768,
 "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 4,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
JSON
"$build/bin/lopa" init-model --config "$work/config100m.json" --out "$work/llama100m" --seed 0

"$build/bin/bench_generate" --model "$shared/models/stories260K" --prompt-len 64 --new-tokens 128 --repeats 3
"$build/bin/bench_generate" --model "$work/llama100m" --prompt-len 128 --new-tokens 32 --repeats 2
