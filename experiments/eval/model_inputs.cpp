#include "experiments/eval/model_inputs.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <fstream>
#include <utility>
#include <nlohmann/json.hpp>

#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/encoder.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace {
std::vector<int64_t> int_list(const nlohmann::json& v, const std::string& where, const char* key) {
  LOPA_CHECK(v.is_array(), where, ": '", key, "' must be a list of integers");
  std::vector<int64_t> out;
  out.reserve(v.size());
  for (const auto& x : v) {
    LOPA_CHECK(x.is_number_integer(), where, ": '", key, "' must be a list of integers, got ", x.dump());
    out.push_back(x.get<int64_t>());
  }
  return out;
}
// One input as a batch of one: ids and (when given) its attention mask, 1 × T.
std::pair<at::Tensor, at::Tensor> batch_of_one(const ModelInput& x) {
  const auto lopt = at::TensorOptions().dtype(at::kLong);
  const int64_t T = static_cast<int64_t>(x.ids.size());
  at::Tensor mask;
  if (!x.attention_mask.empty()) mask = at::tensor(x.attention_mask, lopt).view({1, T});
  return {at::tensor(x.ids, lopt).view({1, T}), mask};
}
}  // namespace

std::vector<ModelInput> read_model_inputs(const std::string& path, const Tokenizer* tokenizer, int64_t vocab_size) {
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open input file");
  std::vector<ModelInput> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = parse_json(line);
    } catch (const std::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    LOPA_CHECK(j.is_object(), where, ": expected a JSON object");
    for (const auto& [k, v] : j.items())
      LOPA_CHECK(k == "ids" || k == "text" || k == "attention_mask", where, ": unknown key '", k,
                 "' (ids, text, attention_mask)");
    LOPA_CHECK(j.contains("ids") != j.contains("text"), where, ": give exactly one of 'ids' and 'text'");
    ModelInput x;
    if (j.contains("ids")) {
      x.ids = int_list(j["ids"], where, "ids");
    } else {
      LOPA_CHECK(j["text"].is_string(), where, ": 'text' must be a string");
      LOPA_CHECK(tokenizer, where, ": a 'text' line needs the model's tokenizer files (give 'ids' instead)");
      x.ids = tokenizer->encode(j["text"].get<std::string>(), /*add_special_tokens=*/true);
    }
    LOPA_CHECK(!x.ids.empty(), where, ": no tokens");
    for (auto id : x.ids)
      LOPA_CHECK(id >= 0 && id < vocab_size, where, ": token id ", id, " outside the vocabulary (", vocab_size, ")");
    if (j.contains("attention_mask")) {
      x.attention_mask = int_list(j["attention_mask"], where, "attention_mask");
      LOPA_CHECK(x.attention_mask.size() == x.ids.size(), where, ": attention_mask has ", x.attention_mask.size(),
                 " entries for ", x.ids.size(), " ids");
      for (auto m : x.attention_mask) LOPA_CHECK(m == 0 || m == 1, where, ": attention_mask entries must be 0 or 1");
    }
    out.push_back(std::move(x));
  }
  return out;
}

void write_logits(const CausalLM& model, const std::vector<ModelInput>& inputs,
                  const std::function<void(const std::string&)>& emit) {
  c10::InferenceMode guard;
  for (const auto& x : inputs) {
    const auto [ids, mask] = batch_of_one(x);
    // Positions as transformers' forward makes them without position_ids: 0 … T-1 for most families
    // (right padding leaves the real positions unchanged; lopa's own cumsum default serves left-padded
    // generation), RoBERTa's count of non-pad ids from padding_idx + 1.
    auto pos = model.architecture().position_ids(ids);
    auto logits = model.lm_logits(model.forward(model.embed(ids), mask, nullptr, pos)).to(at::kCPU, at::kFloat)[0];
    if (!model.process_group().is_root()) continue;
    nlohmann::json rows = nlohmann::json::array();
    const auto acc = logits.accessor<float, 2>();
    for (int64_t t = 0; t < logits.size(0); ++t) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t v = 0; v < logits.size(1); ++v) row.push_back(acc[t][v]);
      rows.push_back(std::move(row));
    }
    emit(nlohmann::json{{"logits", std::move(rows)}}.dump());
  }
}

void write_embeddings(const Encoder& encoder, const std::vector<ModelInput>& inputs,
                      const std::function<void(const std::string&)>& emit) {
  c10::InferenceMode guard;
  for (const auto& x : inputs) {
    const auto [ids, mask] = batch_of_one(x);
    auto e = encoder.embed(ids, mask).to(at::kCPU, at::kFloat).contiguous();
    if (!encoder.model().process_group().is_root()) continue;
    std::vector<float> v(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
    emit(nlohmann::json{{"embedding", v}}.dump());
  }
}

}  // namespace lopa
