// The BERT family's shared architecture (transformers' modeling_bert.py; RoBERTa copies it): token,
// position and token-type embeddings summed and LayerNorm-ed, post-LayerNorm blocks
//   x = LN(o(attn(q, k, v)) + x);  x = LN(out(act(intermediate(x))) + x)
// with bidirectional attention, and the masked-LM head dense → act → LayerNorm → decoder tied to the
// word embeddings plus its own bias. arch/bert.cpp (BERT) and arch/roberta.cpp (RoBERTa, CodeBERT)
// differ only in names, the head's activation and the position ids.
#pragma once

#include <string>

#include "runtime/model/architecture.h"

namespace lopa {

struct BertNames {
  std::string architecture, model_type;
  std::string prefix;           // "bert." / "roberta." on the head model's base keys
  bool masked_lm = false;       // *ForMaskedLM: base keys under prefix, plus the MLM head
  std::string head;             // "cls.predictions" / "lm_head"
  std::string head_dense, head_norm, decoder;  // under head: BERT transform.dense / transform.LayerNorm / decoder
  int64_t default_pad = 0;      // the config class's pad_token_id default
};

class BertFamily : public Architecture {
 public:
  BertFamily(const ConfigReader& r, BertNames names, bool head_act_from_config);
  ModelSpec spec() const override;
  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override;
  std::vector<std::string> default_lora_modules() const override { return {"query", "value"}; }
  Pooling pooling() const override { return Pooling::First; }

 protected:
  BertNames n_;
  double eps_ = 1e-12;
  Activation act_ = Activation::GeluErf, head_act_ = Activation::GeluErf;
  int64_t type_vocab_ = 2, padding_idx_ = 0;
};

}  // namespace lopa
