#include "cluster/train_keys.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "runtime/base/error.h"

namespace lopa::cluster {

const std::vector<TrainKey>& train_keys() {
  // Prompt methods (soft prompt of m virtual tokens): lopa, pt, idpg, prefix. Rank: lopa, lora.
  static const std::vector<TrainKey> keys = {
      // The keys of `lopa train` (experiments/train_config.cpp), in its order, with who uses them.
      {"model", KeyType::Path, "", "", "FM: Hugging Face checkpoint directory"},
      {"encoder", KeyType::Path, "lopa,idpg", "", "LoPA/IDPG encoder checkpoint directory (default: the FM itself)"},
      {"task", KeyType::Choice, "", "sst2,rte,mrpc,qnli,qqp,mnli,mbpp,cruxeval-i,cruxeval-o,story-names,synth-facts", "downstream task"},
      {"data-dir", KeyType::Path, "", "", "data root laid out like ../shared/data"},
      {"method", KeyType::Choice, "", "lopa,pt,idpg,lora,prefix,fft", "what is trained on the frozen FM"},
      {"num-virtual-tokens", KeyType::PositiveInt, "lopa,pt,idpg,prefix", "", "m: soft-prompt length"},
      {"rank", KeyType::PositiveInt, "lopa,lora", "", "r: LoPA rank / LoRA rank"},
      {"lr", KeyType::PositiveReal, "", "", "peak learning rate"},
      {"epochs", KeyType::PositiveInt, "", "", "training epochs (ignored when max-steps > 0)"},
      {"max-steps", KeyType::Count, "", "", "optimizer steps (0: epochs)"},
      {"batch-size", KeyType::PositiveInt, "", "", "global batch size"},
      {"grad-accum", KeyType::PositiveInt, "", "", "micro-batches per optimizer step"},
      {"max-length", KeyType::PositiveInt, "", "", "max tokens of prompt + target"},
      {"seed", KeyType::Count, "", "", "seed of initialisation, data order and dropout"},
      {"tp", KeyType::PositiveInt, "", "", "tensor-parallel ranks (world = tp x dp)"},
      {"dtype", KeyType::Choice, "", "float32,fp32,bfloat16,bf16,float16,fp16", "FM dtype"},
      {"autocast", KeyType::Choice, "", "auto,none,bf16,bfloat16,fp16,float16", "mixed precision of the forward"},
      {"eval-every", KeyType::Count, "", "", "evaluate every N steps (0: at the end only)"},
      {"save-every", KeyType::Count, "", "", "write checkpoint/ every N steps (0: on SIGUSR1 and at the end)"},
      {"device", KeyType::Text, "", "", "auto, cpu, cuda, cuda:N"},
      {"schedule", KeyType::Choice, "", "constant,linear,cosine", "learning-rate schedule"},
      {"warmup-steps", KeyType::Count, "", "", "linear warmup steps"},
      {"weight-decay", KeyType::Real, "", "", "AdamW weight decay"},
      {"max-grad-norm", KeyType::Real, "", "", "gradient clipping (0: off)"},
      {"eval-batch-size", KeyType::PositiveInt, "", "", "sequences per evaluation forward"},
      {"max-new-tokens", KeyType::PositiveInt, "", "", "code tasks: tokens generated per evaluation example"},
      {"max-train-examples", KeyType::Count, "", "", "use the first N training examples (0: all)"},
      {"max-eval-examples", KeyType::Count, "", "", "evaluate on the first N examples (0: all)"},
      {"eval-split", KeyType::Text, "", "", "split evaluated during training"},
      {"lopa-combine", KeyType::Choice, "lopa", "mul,add,max,concat", "how Z_S and the instance part combine"},
      {"encoder-pooling", KeyType::Choice, "lopa,idpg", "last,mean,first", "encoder embedding pooling"},
      {"head-dim", KeyType::Count, "lopa,idpg", "", "h of the LoPA/IDPG heads (0: default)"},
      {"prompt-dropout", KeyType::Fraction, "lopa,idpg", "", "dropout on the LoPA/IDPG head inputs"},
      {"prompt-init", KeyType::Choice, "lopa,pt", "random,vocab,text", "Z_S initialisation"},
      {"prompt-init-text", KeyType::Text, "lopa,pt", "", "text whose token embeddings initialise Z_S"},
      {"lora-alpha", KeyType::PositiveReal, "lora", "", "LoRA alpha"},
      {"lora-dropout", KeyType::Fraction, "lora", "", "LoRA dropout"},
      {"lora-targets", KeyType::Text, "lora", "", "LoRA projections (in [fixed]: a comma list is one value)"},
      {"prefix-projection", KeyType::Bool, "prefix", "", "prefix tuning through an MLP"},
      {"prefix-hidden", KeyType::Count, "prefix", "", "prefix tuning MLP width (0: d)"},
      {"prompt-template", KeyType::Text, "", "", "override the task's prompt template"},
      {"target-template", KeyType::Text, "", "", "override the task's target template"},
      {"verbalizers", KeyType::Text, "", "", "override GLUE verbalizers ('|'-separated)"},
      {"skip-bad-rows", KeyType::Bool, "", "", "skip malformed data rows instead of failing"},
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
