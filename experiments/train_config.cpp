#include "experiments/train_config.h"

#include <fstream>
#include <set>

#include "runtime/base/error.h"

namespace lopa {

const std::vector<ConfigKey>& train_config_keys() {
  static const std::vector<ConfigKey> keys = {
      {"model", "", "FM: Hugging Face checkpoint directory (required)"},
      {"encoder", "", "LoPA/IDPG encoder checkpoint directory (default: the FM itself)"},
      {"task", "", "sst2, rte, mrpc, qnli, qqp, mnli, mbpp, cruxeval-i, cruxeval-o, story-names, synth-facts (required)"},
      {"data-dir", "", "data root laid out like ../shared/data (GLUE tasks)"},
      {"method", "lopa", "lopa, pt, idpg, lora, prefix, fft"},
      {"num-virtual-tokens", "10", "m: soft-prompt length (LoPA, PT, IDPG, prefix)"},
      {"rank", "1", "r: LoPA rank / LoRA rank"},
      {"lr", "0.001", "peak learning rate"},
      {"epochs", "1", "training epochs (ignored when max-steps > 0)"},
      {"max-steps", "0", "optimizer steps (0: epochs)"},
      {"batch-size", "8", "global batch size (examples per optimizer step, over all dp ranks)"},
      {"grad-accum", "1", "micro-batches per optimizer step"},
      {"max-length", "256", "max tokens of prompt + target (prompt cut from the left)"},
      {"seed", "0", "seed of initialisation, data order and dropout"},
      {"tp", "1", "tensor-parallel ranks (world = tp × dp)"},
      {"dtype", "float32", "FM dtype: float32, bfloat16, float16 (trainable parameters stay float32)"},
      {"autocast", "auto", "mixed precision of the forward: auto (bf16 on CUDA, none on CPU), none, bf16, fp16"},
      {"eval-every", "0", "evaluate every N steps (0: at the end only)"},
      {"save-every", "0", "write checkpoint/ every N steps (0: on SIGUSR1 and at the end)"},
      {"device", "auto", "auto, cpu, cuda, cuda:N"},
      {"schedule", "linear", "constant (with warmup), linear, cosine"},
      {"warmup-steps", "0", "linear warmup steps"},
      {"weight-decay", "0", "AdamW weight decay"},
      {"max-grad-norm", "1", "gradient clipping (0: off)"},
      {"eval-batch-size", "16", "sequences per evaluation forward"},
      {"max-new-tokens", "256", "code tasks (MBPP, CruxEval): tokens generated per evaluation example"},
      {"max-train-examples", "0", "use the first N training examples (0: all)"},
      {"max-eval-examples", "0", "evaluate on the first N examples (0: all)"},
      {"eval-split", "", "split evaluated during training (default: the task's reported split)"},
      {"lopa-combine", "mul", "LoPA: mul (Z_S ∘ sigmoid(u vᵀ)), add, max, concat"},
      {"encoder-pooling", "last", "encoder embedding: last (last real token), mean, first"},
      {"head-dim", "0", "h of the LoPA/IDPG heads (0: LoPA H, IDPG 256)"},
      {"prompt-dropout", "0.1", "dropout on the LoPA/IDPG head inputs"},
      {"prompt-init", "random", "Z_S init (PT, LoPA): random (N(0,1) as PEFT), vocab (random token embeddings), text"},
      {"prompt-init-text", "", "text whose token embeddings initialise Z_S (prompt-init = text)"},
      {"lora-alpha", "16", "LoRA alpha (scaling alpha/r)"},
      {"lora-dropout", "0.05", "LoRA dropout"},
      {"lora-targets", "q,k,v", "LoRA modules: comma list of module names (q_proj, c_attn, qkv_proj, dense, ...) or roles (q,k,v,o,gate,up,down,fc_in,fc_out), all-linear, or auto (the family's usual set)"},
      {"prefix-projection", "false", "prefix tuning: reparameterise through an MLP (PEFT prefix_projection)"},
      {"prefix-hidden", "0", "prefix tuning MLP width (0: d)"},
      {"prompt-template", "", "override the task's prompt template ({field} placeholders; \\n escapes)"},
      {"target-template", "", "override the task's target template"},
      {"verbalizers", "", "override GLUE verbalizers: one word per label, '|'-separated"},
      {"skip-bad-rows", "false", "skip malformed data rows instead of failing"},
  };
  return keys;
}

namespace {
int64_t to_int(const std::map<std::string, std::string>& kv, const std::string& k, int64_t min) {
  const auto& s = kv.at(k);
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (...) {
    pos = 0;
  }
  LOPA_CHECK(pos == s.size() && !s.empty(), "--", k, ": '", s, "' is not an integer");
  LOPA_CHECK(v >= min, "--", k, ": must be >= ", min, ", got ", v);
  return v;
}
double to_double(const std::map<std::string, std::string>& kv, const std::string& k, double min) {
  const auto& s = kv.at(k);
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    pos = 0;
  }
  LOPA_CHECK(pos == s.size() && !s.empty(), "--", k, ": '", s, "' is not a number");
  LOPA_CHECK(v >= min, "--", k, ": must be >= ", min, ", got ", v);
  return v;
}
bool to_bool(const std::map<std::string, std::string>& kv, const std::string& k) {
  const auto& s = kv.at(k);
  if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "0" || s == "no" || s == "off" || s.empty()) return false;
  fail("--", k, ": '", s, "' is not a boolean (true/false)");
}
void one_of(const std::map<std::string, std::string>& kv, const std::string& k, std::set<std::string> allowed) {
  const auto& s = kv.at(k);
  if (allowed.count(s)) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail("--", k, ": unknown value '", s, "' (expected one of ", list, ")");
}
}  // namespace

TrainConfig TrainConfig::from_map(const std::map<std::string, std::string>& in) {
  std::map<std::string, std::string> kv;
  for (const auto& k : train_config_keys()) kv[k.name] = k.default_value;
  for (const auto& [k, v] : in) {
    LOPA_CHECK(kv.count(k), "unknown training key '", k, "' (see lopa train --help)");
    kv[k] = v;
  }
  TrainConfig c;
  c.model = kv["model"];
  LOPA_CHECK(!c.model.empty(), "--model: required (a Hugging Face checkpoint directory)");
  c.encoder = kv["encoder"];
  c.task = kv["task"];
  LOPA_CHECK(!c.task.empty(), "--task: required");
  c.data_dir = kv["data-dir"];
  c.method = kv["method"];
  one_of(kv, "method", {"lopa", "pt", "idpg", "lora", "prefix", "fft"});
  c.num_virtual_tokens = to_int(kv, "num-virtual-tokens", 1);
  c.rank = to_int(kv, "rank", 1);
  c.lr = to_double(kv, "lr", 0);
  c.epochs = to_int(kv, "epochs", 0);
  c.max_steps = to_int(kv, "max-steps", 0);
  LOPA_CHECK(c.epochs > 0 || c.max_steps > 0, "--epochs/--max-steps: one of them must be positive");
  c.batch_size = to_int(kv, "batch-size", 1);
  c.grad_accum = to_int(kv, "grad-accum", 1);
  LOPA_CHECK(c.batch_size % c.grad_accum == 0, "--batch-size ", c.batch_size, " is not a multiple of --grad-accum ",
             c.grad_accum);
  c.max_length = to_int(kv, "max-length", 8);
  c.seed = to_int(kv, "seed", 0);
  c.tp = to_int(kv, "tp", 1);
  c.dtype = kv["dtype"];
  one_of(kv, "dtype", {"float32", "fp32", "bfloat16", "bf16", "float16", "fp16"});
  c.autocast = kv["autocast"];
  one_of(kv, "autocast", {"auto", "none", "bf16", "bfloat16", "fp16", "float16"});
  c.eval_every = to_int(kv, "eval-every", 0);
  c.save_every = to_int(kv, "save-every", 0);
  c.device = kv["device"];
  c.schedule = kv["schedule"];
  one_of(kv, "schedule", {"constant", "linear", "cosine"});
  c.warmup_steps = to_int(kv, "warmup-steps", 0);
  c.weight_decay = to_double(kv, "weight-decay", 0);
  c.max_grad_norm = to_double(kv, "max-grad-norm", 0);
  c.eval_batch_size = to_int(kv, "eval-batch-size", 1);
  c.max_new_tokens = to_int(kv, "max-new-tokens", 1);
  c.max_train_examples = to_int(kv, "max-train-examples", 0);
  c.max_eval_examples = to_int(kv, "max-eval-examples", 0);
  c.eval_split = kv["eval-split"];
  c.lopa_combine = kv["lopa-combine"];
  one_of(kv, "lopa-combine", {"mul", "add", "max", "concat"});
  c.encoder_pooling = kv["encoder-pooling"];
  one_of(kv, "encoder-pooling", {"last", "mean", "first"});
  c.head_dim = to_int(kv, "head-dim", 0);
  c.prompt_dropout = to_double(kv, "prompt-dropout", 0);
  LOPA_CHECK(c.prompt_dropout < 1, "--prompt-dropout: must be < 1");
  c.prompt_init = kv["prompt-init"];
  one_of(kv, "prompt-init", {"random", "vocab", "text"});
  c.prompt_init_text = kv["prompt-init-text"];
  LOPA_CHECK(c.prompt_init != "text" || !c.prompt_init_text.empty(), "--prompt-init text needs --prompt-init-text");
  c.lora_alpha = to_double(kv, "lora-alpha", 0);
  c.lora_dropout = to_double(kv, "lora-dropout", 0);
  LOPA_CHECK(c.lora_dropout < 1, "--lora-dropout: must be < 1");
  c.lora_targets = kv["lora-targets"];
  c.prefix_projection = to_bool(kv, "prefix-projection");
  c.prefix_hidden = to_int(kv, "prefix-hidden", 0);
  c.prompt_template = kv["prompt-template"];
  c.target_template = kv["target-template"];
  c.verbalizers = kv["verbalizers"];
  c.skip_bad_rows = to_bool(kv, "skip-bad-rows");
  return c;
}

std::string TrainConfig::to_ini(const std::map<std::string, std::string>& kv) {
  std::string out = "# lopa train: every resolved key of this run\n";
  for (const auto& k : train_config_keys()) {
    auto it = kv.find(k.name);
    out += std::string(k.name) + " = " + (it != kv.end() ? it->second : std::string(k.default_value)) + "\n";
  }
  return out;
}

std::map<std::string, std::string> TrainConfig::read_ini(const std::string& path) {
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open");
  std::map<std::string, std::string> kv;
  std::string line;
  int64_t n = 0;
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
  };
  while (std::getline(in, line)) {
    ++n;
    auto t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    auto eq = t.find('=');
    LOPA_CHECK(eq != std::string::npos, path, ":", n, ": expected KEY = VALUE");
    kv[trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
  }
  return kv;
}

}  // namespace lopa
