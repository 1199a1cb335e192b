// RobertaModel / RobertaForMaskedLM (transformers' modeling_roberta.py): roberta-base/large,
// microsoft/codebert-base. BERT's blocks (arch/bert.h) with RoBERTa's position ids — non-pad tokens
// counted from padding_idx + 1, pad tokens at padding_idx (create_position_ids_from_input_ids), and
// padding_idx + 1 … for inputs_embeds (create_position_ids_from_inputs_embeds) — and its MLM head
// lm_head: dense → gelu (erf) → layer_norm → decoder tied to the word embeddings + lm_head.bias.
// Hub checkpoints: keys with or without "roberta.", pooler and lm_head.decoder.* copies ignored.
#include "runtime/model/arch/bert.h"

#include <nlohmann/json.hpp>


namespace lopa {
namespace {

class Roberta : public BertFamily {
 public:
  Roberta(const ConfigReader& r, BertNames n) : BertFamily(r, std::move(n), /*head_act_from_config=*/false) {}

  at::Tensor position_ids(const at::Tensor& ids) const override {
    auto mask = ids.ne(padding_idx_).to(at::kLong);
    return mask.cumsum(1) * mask + padding_idx_;
  }

  at::Tensor embeds_position_ids(int64_t B, int64_t T, c10::Device device) const override {
    return at::arange(padding_idx_ + 1, T + padding_idx_ + 1, at::TensorOptions().dtype(at::kLong).device(device))
        .unsqueeze(0)
        .expand({B, T});
  }
};

}  // namespace

std::unique_ptr<Architecture> make_roberta(const ConfigReader& r, const std::string&) {
  const bool mlm = r.has("architectures") && r.json()["architectures"][0] == "RobertaForMaskedLM";
  BertNames n;
  n.architecture = mlm ? "RobertaForMaskedLM" : "RobertaModel";
  n.model_type = "roberta";
  n.prefix = "roberta.";
  n.masked_lm = mlm;
  n.head = "lm_head";
  n.head_dense = "dense";
  n.head_norm = "layer_norm";
  n.decoder = "decoder";
  n.default_pad = 1;
  return std::make_unique<Roberta>(r, std::move(n));
}

}  // namespace lopa
