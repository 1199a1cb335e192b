#include "baselines/prefix_tuning.h"

#include "lopa/adapter_io.h"
#include "runtime/base/error.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/tensor_parallel.h"

namespace lopa {

PrefixTuning::PrefixTuning(PrefixTuningOptions opt, const CausalLM& fm) : opt_(std::move(opt)) {
  LOPA_CHECK(opt_.num_tokens > 0, "prefix: num-virtual-tokens must be positive");
  layers_ = fm.num_layers();
  kv_heads_ = fm.num_kv_heads();
  head_dim_ = fm.head_dim();
  d_ = fm.hidden_size();
  kv_local_ = fm.num_kv_heads_local();
  kv_begin_ = fm.kv_head_begin();  // KV heads are replicated when fewer than tp ranks
  tp_ = fm.process_group().tp.get();
  if (opt_.projection_dim <= 0) opt_.projection_dim = d_;
  const int64_t width = layers_ * 2 * kv_heads_ * head_dim_;
  if (!opt_.projection) {
    embedding = make_parameter({opt_.num_tokens, width}, opt_.init_std);
  } else {
    embedding = make_parameter({opt_.num_tokens, d_}, opt_.init_std);
    // nn.Linear's default init (Kaiming-uniform a=√5 on weights, uniform on biases), as PEFT leaves it.
    auto lin = [](int64_t out, int64_t in, at::Tensor& w, at::Tensor& b) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      w = at::empty({out, in}, at::kFloat).uniform_(-bound, bound).set_requires_grad(true);
      b = at::empty({out}, at::kFloat).uniform_(-bound, bound).set_requires_grad(true);
    };
    lin(opt_.projection_dim, d_, w1, b1);
    lin(width, opt_.projection_dim, w2, b2);
  }
  Method::to(fm.device());
}

NamedTensors PrefixTuning::parameters() {
  if (!opt_.projection) return {{"prompt_embeddings", embedding}};
  return {{"prompt_encoder.embedding.weight", embedding},
          {"prompt_encoder.transform.0.weight", w1},
          {"prompt_encoder.transform.0.bias", b1},
          {"prompt_encoder.transform.2.weight", w2},
          {"prompt_encoder.transform.2.bias", b2}};
}

int64_t PrefixTuning::formula(int64_t P, int64_t L, int64_t kv_dim, int64_t d, bool projection, int64_t h) {
  const int64_t width = L * 2 * kv_dim;
  return projection ? P * d + d * h + h + (h + 1) * width : P * width;
}

int64_t PrefixTuning::num_trainable_parameters() const {
  return formula(opt_.num_tokens, layers_, kv_heads_ * head_dim_, d_, opt_.projection, opt_.projection_dim);
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> PrefixTuning::prefix_kv() {
  auto table = opt_.projection ? linear(at::tanh(linear(embedding, w1, b1)), w2, b2) : embedding;  // P × width
  // The table is replicated but each tp rank reads only its KV heads' slice: all-reducing its gradient
  // (which also sums the shares of KV heads replicated over ranks under GQA) keeps every rank's copy,
  // the gradient norm and the saved adapter equal to tp = 1.
  if (tp_) table = tp::copy_to_region(table, *tp_);
  // PEFT's layout: P × (L·2) × KV × hd, layer l's keys at 2l, values at 2l+1.
  auto kv = table.view({opt_.num_tokens, layers_ * 2, kv_heads_, head_dim_}).narrow(2, kv_begin_, kv_local_);
  std::vector<at::Tensor> keys, values;
  for (int64_t l = 0; l < layers_; ++l) {
    keys.push_back(kv.select(1, 2 * l).permute({1, 0, 2}).unsqueeze(0));    // 1 × KV_local × P × hd
    values.push_back(kv.select(1, 2 * l + 1).permute({1, 0, 2}).unsqueeze(0));
  }
  return {keys, values};
}

void PrefixTuning::seed_cache(KVCache& cache, const CausalLM& fm, int64_t) {
  auto [k, v] = prefix_kv();
  for (auto& t : k) t = t.to(fm.dtype());
  for (auto& t : v) t = t.to(fm.dtype());
  cache.set_prefix(std::move(k), std::move(v));
}

void PrefixTuning::save(const std::string& dir) const {
  auto self = const_cast<PrefixTuning*>(this);
  NamedTensors tensors = self->parameters();
  nlohmann::json cfg = {{"peft_type", "PREFIX_TUNING"},
                        {"task_type", "CAUSAL_LM"},
                        {"num_virtual_tokens", opt_.num_tokens},
                        {"token_dim", kv_heads_ * head_dim_},
                        {"num_layers", layers_},
                        {"num_attention_heads", kv_heads_},
                        {"num_transformer_submodules", 1},
                        {"prefix_projection", opt_.projection},
                        {"encoder_hidden_size", opt_.projection_dim},
                        {"base_model_name_or_path", opt_.base_model},
                        {"inference_mode", true}};
  if (opt_.projection) {
    // PEFT saves the reparameterised prefix (the table the projection produces) as prompt_embeddings.
    at::NoGradGuard g;
    tensors.emplace_back("prompt_embeddings", linear(at::tanh(linear(embedding, w1, b1)), w2, b2));
  }
  write_adapter(dir, tensors, cfg, "adapter_config.json", "adapter_model.safetensors");
}

void PrefixTuning::load(const std::string& dir) {
  auto cfg = read_adapter_config(dir, "adapter_config.json");
  LOPA_CHECK(cfg.value("peft_type", std::string()) == "PREFIX_TUNING", dir,
             "/adapter_config.json: peft_type is not PREFIX_TUNING");
  assign_parameters(parameters(), read_adapter_tensors(dir, "adapter_model.safetensors"),
                    dir + "/adapter_model.safetensors");
}

}  // namespace lopa
