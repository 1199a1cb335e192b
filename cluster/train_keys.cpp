#include "cluster/train_keys.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "runtime/error.h"

namespace lopa::cluster {

const std::vector<TrainKey>& train_keys() {
  // Prompt methods (soft prompt of m virtual tokens): lopa, pt, idpg, prefix. Rank: lopa, lora.
  static const std::vector<TrainKey> keys = {
      {"model", KeyType::Path, "", "", "frozen foundation model: a Hugging Face checkpoint directory"},
      {"task", KeyType::Choice, "", "sst2,rte,mrpc,qnli,qqp,mnli,mbpp,cruxeval-i,cruxeval-o", "downstream task"},
      {"method", KeyType::Choice, "", "lopa,pt,idpg,lora,fft,prefix", "what is trained on the frozen FM"},
      {"num-virtual-tokens", KeyType::PositiveInt, "lopa,pt,idpg,prefix", "", "m: soft-prompt length"},
      {"rank", KeyType::PositiveInt, "lopa,lora", "", "r: rank of the LoPA gate u vᵀ or of the LoRA update"},
      {"seed", KeyType::Count, "", "", "seed for initialisation, data order and dropout"},
      {"data-dir", KeyType::Path, "", "", "data root laid out like ../shared/data"},
      {"encoder", KeyType::Path, "lopa,idpg", "", "instance encoder checkpoint (default: the FM itself)"},
      {"encoder-pooling", KeyType::Choice, "lopa,idpg", "last,mean,first", "how the encoder's hidden states become one vector"},
      {"head-hidden", KeyType::PositiveInt, "lopa,idpg", "", "h: hidden width of the LoPA/IDPG heads (default: encoder width)"},
      {"lopa-variant", KeyType::Choice, "lopa", "mul,add,max,concat", "how Z_S and the instance part combine"},
      {"prompt-init-text", KeyType::Text, "pt", "", "initialise the soft prompt from the embeddings of this text"},
      {"lora-alpha", KeyType::PositiveReal, "lora", "", "LoRA scaling alpha"},
      {"lora-dropout", KeyType::Fraction, "lora", "", "dropout on the LoRA input"},
      {"lora-targets", KeyType::Text, "lora", "", "projections LoRA adapts: q,k,v,o,gate,up,down or all-linear"},
      {"lr", KeyType::PositiveReal, "", "", "peak learning rate (AdamW)"},
      {"weight-decay", KeyType::Real, "", "", "AdamW weight decay"},
      {"schedule", KeyType::Choice, "", "constant,linear,cosine", "learning-rate schedule after warm-up"},
      {"warmup-steps", KeyType::Count, "", "", "linear warm-up steps"},
      {"max-grad-norm", KeyType::Real, "", "", "gradient clipping norm (0 = none)"},
      {"epochs", KeyType::PositiveInt, "", "", "passes over the training split"},
      {"max-steps", KeyType::PositiveInt, "", "", "optimizer steps (overrides epochs)"},
      {"batch-size", KeyType::PositiveInt, "", "", "global batch size (examples per optimizer step)"},
      {"grad-accum", KeyType::PositiveInt, "", "", "micro-batches accumulated per step"},
      {"max-length", KeyType::PositiveInt, "", "", "maximum tokens per example"},
      {"tp", KeyType::PositiveInt, "", "", "tensor-parallel ranks (dp = world / tp)"},
      {"dtype", KeyType::Choice, "", "float32,bfloat16,float16", "FM dtype"},
      {"device", KeyType::Choice, "", "cpu,cuda", "where the FM runs"},
      {"eval-every", KeyType::Count, "", "", "evaluate every N steps (0 = at the end)"},
      {"save-every", KeyType::Count, "", "", "checkpoint every N steps (0 = at the end)"},
      {"eval-split", KeyType::Text, "", "", "split evaluated during training"},
      {"temperature", KeyType::Real, "", "", "sampling temperature for generation tasks (0 = greedy)"},
      {"top-p", KeyType::PositiveReal, "", "", "nucleus sampling for generation tasks"},
      {"num-samples", KeyType::PositiveInt, "", "", "samples per problem for pass@k"},
  };
  return keys;
}

const TrainKey* find_train_key(const std::string& name) {
  for (const auto& k : train_keys())
    if (name == k.name) return &k;
  return nullptr;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> v = split_list(find_train_key("method")->choices);
  return v;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> v = split_list(find_train_key("task")->choices);
  return v;
}

bool method_uses(const TrainKey& k, const std::string& method) {
  if (!*k.methods) return true;
  const auto ms = split_list(k.methods);
  return std::find(ms.begin(), ms.end(), method) != ms.end();
}

namespace {

bool parse_int(const std::string& v, long long& out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(v.c_str(), &end, 10);
  return errno == 0 && end && *end == '\0';
}

bool parse_real(const std::string& v, double& out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(v.c_str(), &end);
  return errno == 0 && end && *end == '\0' && std::isfinite(out);
}

}  // namespace

void check_train_value(const TrainKey& k, const std::string& value, const std::string& where) {
  const auto bad = [&](const std::string& why) { fail(where, ": ", k.name, " = '", value, "': ", why); };
  if (value.empty()) bad("empty value");
  long long i = 0;
  double x = 0;
  switch (k.type) {
    case KeyType::Text:
    case KeyType::Path:
      break;
    case KeyType::Int:
      if (!parse_int(value, i)) bad("not an integer");
      break;
    case KeyType::PositiveInt:
      if (!parse_int(value, i)) bad("not an integer");
      if (i <= 0) bad("must be > 0");
      break;
    case KeyType::Count:
      if (!parse_int(value, i)) bad("not an integer");
      if (i < 0) bad("must be >= 0");
      break;
    case KeyType::PositiveReal:
      if (!parse_real(value, x)) bad("not a number");
      if (x <= 0) bad("must be > 0");
      break;
    case KeyType::Fraction:
      if (!parse_real(value, x)) bad("not a number");
      if (x < 0 || x >= 1) bad("must be in [0, 1)");
      break;
    case KeyType::Real:
      if (!parse_real(value, x)) bad("not a number");
      break;
    case KeyType::Choice: {
      const auto cs = split_list(k.choices);
      if (std::find(cs.begin(), cs.end(), value) == cs.end()) bad(str("unknown ", k.name, " (expected one of ", k.choices, ")"));
      break;
    }
    case KeyType::Bool:
      if (value != "true" && value != "false" && value != "1" && value != "0" && value != "yes" && value != "no")
        bad("not a boolean (true|false)");
      break;
  }
}

}  // namespace lopa::cluster
