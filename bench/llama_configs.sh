# Sourced by the bench scripts (needs $lopa, $shared and $work set):
#   make_llama NAME VOCAB D F LAYERS HEADS KV [DTYPE] [TIED]
# writes $work/NAME.json, a Llama config.json, and, unless $work/NAME/model.safetensors exists, a
# random-init checkpoint there (`lopa init-model`, seed 0, stories260K's tokenizer files).
# DTYPE is the stored torch_dtype (default float32), TIED whether the LM head is the embedding (true).
make_llama() {
  local name=$1 vocab=$2 d=$3 f=$4 layers=$5 heads=$6 kv=$7 dtype=${8:-float32} tied=${9:-true}
  [ -f "$work/$name/model.safetensors" ] && return
  mkdir -p "$work"
  cat > "$work/$name.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": $vocab, "hidden_size": $d,
 "intermediate_size": $f, "num_hidden_layers": $layers, "num_attention_heads": $heads, "num_key_value_heads": $kv,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": $tied,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "$dtype"}
JSON
  "$lopa" init-model --config "$work/$name.json" --out "$work/$name" --tokenizer "$shared/models/stories260K" --seed 0 >&2
}
