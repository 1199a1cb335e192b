// The architectures lopa runs: one line each (HF class, model_type, the factory in arch/<name>.cpp).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/model/architecture.h"

namespace lopa {

// Factories, one per file in runtime/model/arch/.
std::unique_ptr<Architecture> make_llama(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_gpt2(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_codegen(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_phi(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_roberta(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_bert(const ConfigReader& r, const std::string& model_type);
std::unique_ptr<Architecture> make_codesage(const ConfigReader& r, const std::string& model_type);

namespace {

struct Registration {
  const char* architecture;
  const char* model_type;
  std::unique_ptr<Architecture> (*make)(const ConfigReader&, const std::string&);
};

const Registration kArchitectures[] = {
    {"LlamaForCausalLM", "llama", make_llama},      // Llama 2/3, CodeLlama, DeepSeek-Coder
    {"MistralForCausalLM", "mistral", make_llama},  //
    {"Qwen2ForCausalLM", "qwen2", make_llama},      //
    {"Phi3ForCausalLM", "phi3", make_llama},        // Phi-3 (fused qkv_proj / gate_up_proj)
    {"GPT2LMHeadModel", "gpt2", make_gpt2},         //
    {"CodeGenForCausalLM", "codegen", make_codegen},
    {"PhiForCausalLM", "phi", make_phi},  // phi-1, phi-1.5, phi-2 (transformers-native layout)
    // Bidirectional encoders; with only a model_type, the last line of a type (the base model) is taken.
    {"RobertaForMaskedLM", "roberta", make_roberta},  // roberta-base/large
    {"RobertaModel", "roberta", make_roberta},        // microsoft/codebert-base
    {"BertForMaskedLM", "bert", make_bert},           //
    {"BertModel", "bert", make_bert},                 //
    {"CodeSageForMaskedLM", "codesage", make_codesage},
    {"CodeSageModel", "codesage", make_codesage},  // codesage/codesage-{small,base,large} (remote code)
};

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& r : kArchitectures) out.push_back(r.architecture);
  return out;
}

std::unique_ptr<Architecture> make_architecture(const std::string& text, const std::string& src) {
  nlohmann::json j;
  try {
    j = parse_json(text);
  } catch (const std::exception& e) {
    fail(src, ": not valid JSON (", e.what(), ")");
  }
  LOPA_CHECK(j.is_object(), src, ": not a JSON object");
  std::string arch, type;
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    LOPA_CHECK(j["architectures"].is_array() && j["architectures"].size() == 1 && j["architectures"][0].is_string(),
               src, ": 'architectures' must be a list of one name, got ", j["architectures"].dump());
    arch = j["architectures"][0].get<std::string>();
  }
  if (j.contains("model_type") && j["model_type"].is_string()) type = j["model_type"].get<std::string>();
  LOPA_CHECK(!arch.empty() || !type.empty(), src, ": missing field 'architectures' (and 'model_type')");
  if (type == "phi-msft" || (arch == "PhiForCausalLM" && j.contains("n_embd")))
    fail(src, ": this is phi-2's pre-2024 remote-code layout (model_type 'phi-msft', transformer.embd, mixer.Wqkv); "
         "download the transformers-native revision instead (microsoft/phi-2 main, January 2024 or later: "
         "model_type 'phi', model.layers.N.self_attn.q_proj)");
  const Registration* found = nullptr;
  for (const auto& r : kArchitectures)
    if ((!arch.empty() && arch == r.architecture) || (arch.empty() && type == r.model_type)) found = &r;
  if (!found) {
    std::string known;
    for (const auto& r : kArchitectures)
      known += std::string(known.empty() ? "" : ", ") + r.architecture + " (" + r.model_type + ")";
    fail(src, ": unsupported architecture '", arch.empty() ? type : arch, "' (supported: ", known, ")");
  }
  LOPA_CHECK(type.empty() || type == found->model_type, src, ": model_type '", type, "' does not match architecture '",
             found->architecture, "' (expected '", found->model_type, "')");
  auto a = found->make(ConfigReader(j, src), found->model_type);
  return a;
}

std::unique_ptr<Architecture> load_architecture(const std::string& path) {
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open model config");
  std::stringstream ss;
  ss << in.rdbuf();
  return make_architecture(ss.str(), path);
}

}  // namespace lopa
