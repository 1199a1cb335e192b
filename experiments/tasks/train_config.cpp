#include "experiments/tasks/train_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "runtime/base/error.h"

namespace lopa {

namespace {

// One value against its key's rule in the table, in `lopa train`'s words ("--key: ...").
void check_value(const TrainKey& k, const std::string& s) {
  long long i = 0;
  double x = 0;
  bool b = false;
  switch (k.type) {
    case KeyType::Text:
    case KeyType::Path:
      return;
    case KeyType::Int:
      LOPA_CHECK(parse_key_int(s, i), "--", k.name, ": '", s, "' is not an integer");
      LOPA_CHECK(i >= k.min, "--", k.name, ": must be >= ", k.min, ", got ", i);
      return;
    case KeyType::Real:
    case KeyType::Fraction:
      LOPA_CHECK(parse_key_real(s, x), "--", k.name, ": '", s, "' is not a number");
      LOPA_CHECK(x >= k.min, "--", k.name, ": must be >= ", k.min, ", got ", x);
      LOPA_CHECK(k.type != KeyType::Fraction || x < 1, "--", k.name, ": must be < 1");
      return;
    case KeyType::Choice: {
      std::set<std::string> allowed;  // sorted: the message lists them alphabetically
      std::istringstream in(k.choices);
      for (std::string item; std::getline(in, item, ',');) allowed.insert(item);
      if (allowed.count(s)) return;
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail("--", k.name, ": unknown value '", s, "' (expected one of ", list, ")");
    }
    case KeyType::Bool:
      LOPA_CHECK(parse_key_bool(s, b), "--", k.name, ": '", s, "' is not a boolean (true/false)");
      return;
  }
}

// Typed reads of already checked values. Each also asserts the table gives the key the type the
// field has, so a table edit that the struct does not follow fails on the first run, not silently.
const TrainKey& key_of(const std::string& name, KeyType t1, KeyType t2) {
  const TrainKey* k = find_train_key(name);
  LOPA_CHECK(k && (k->type == t1 || k->type == t2), "experiments/train_keys.h: key '", name,
             "' is missing or not of the type TrainConfig reads it as");
  return *k;
}

}  // namespace

TrainConfig TrainConfig::from_map(const std::map<std::string, std::string>& in) {
  std::map<std::string, std::string> kv;
  for (const auto& k : train_keys()) kv[k.name] = k.default_value;
  for (const auto& [k, v] : in) {
    LOPA_CHECK(kv.count(k), "unknown training key '", k, "' (see lopa train --help)");
    kv[k] = v;
  }
  const auto integer = [&](const std::string& name) {
    key_of(name, KeyType::Int, KeyType::Int);
    return int64_t(std::stoll(kv.at(name)));
  };
  const auto real = [&](const std::string& name) {
    key_of(name, KeyType::Real, KeyType::Fraction);
    return std::stod(kv.at(name));
  };
  const auto flag = [&](const std::string& name) {
    key_of(name, KeyType::Bool, KeyType::Bool);
    bool b = false;
    parse_key_bool(kv.at(name), b);
    return b;
  };
  const auto text = [&](const std::string& name) -> const std::string& {
    LOPA_CHECK(find_train_key(name), "experiments/train_keys.h: no key '", name, "'");
    return kv.at(name);
  };

  // One pass in table order: each key's rule, then the checks that need it and the keys before it,
  // so that the first error reported is the first in table order.
  for (const auto& k : train_keys()) {
    const std::string name = k.name;
    // Task names are resolved, and an unknown one reported with the tasks' list, by the task registry
    // (experiments/tasks/task.cpp); tests_train_keys checks that it knows the table's tasks.
    if (name != "task") check_value(k, kv.at(name));
    if (name == "model") LOPA_CHECK(!kv.at(name).empty(), "--model: required (a Hugging Face checkpoint directory)");
    if (name == "task") LOPA_CHECK(!kv.at(name).empty(), "--task: required");
    if (name == "max-steps")
      LOPA_CHECK(integer("epochs") > 0 || integer("max-steps") > 0, "--epochs/--max-steps: one of them must be positive");
    if (name == "grad-accum")
      LOPA_CHECK(integer("batch-size") % integer("grad-accum") == 0, "--batch-size ", integer("batch-size"),
                 " is not a multiple of --grad-accum ", integer("grad-accum"));
    if (name == "train-encoder")
      LOPA_CHECK(!flag("train-encoder") || (kv.at("method") != "lopa" && kv.at("method") != "idpg") ||
                     !kv.at("encoder").empty(),
                 "--train-encoder: needs --encoder DIR (without one the FM embeds the instances, and the FM stays frozen)");
    if (name == "prompt-init-text")
      LOPA_CHECK(kv.at("prompt-init") != "text" || !kv.at(name).empty(), "--prompt-init text needs --prompt-init-text");
  }

  TrainConfig c;
  c.model = text("model");
  c.encoder = text("encoder");
  c.task = text("task");
  c.data_dir = text("data-dir");
  c.method = text("method");
  c.num_virtual_tokens = integer("num-virtual-tokens");
  c.rank = integer("rank");
  c.lr = real("lr");
  c.epochs = integer("epochs");
  c.max_steps = integer("max-steps");
  c.batch_size = integer("batch-size");
  c.grad_accum = integer("grad-accum");
  c.max_length = integer("max-length");
  c.seed = integer("seed");
  c.tp = integer("tp");
  c.dtype = text("dtype");
  c.autocast = text("autocast");
  c.eval_every = integer("eval-every");
  c.save_every = integer("save-every");
  c.device = text("device");
  c.schedule = text("schedule");
  c.warmup_steps = integer("warmup-steps");
  c.weight_decay = real("weight-decay");
  c.max_grad_norm = real("max-grad-norm");
  c.eval_batch_size = integer("eval-batch-size");
  c.max_new_tokens = integer("max-new-tokens");
  c.max_train_examples = integer("max-train-examples");
  c.max_eval_examples = integer("max-eval-examples");
  c.eval_split = text("eval-split");
  c.holdout = real("holdout");
  c.holdout_max = integer("holdout-max");
  c.save_initial = flag("save-initial");
  c.lopa_combine = text("lopa-combine");
  c.encoder_pooling = text("encoder-pooling");
  c.encoder_max_length = integer("encoder-max-length");
  c.train_encoder = flag("train-encoder");
  c.encoder_lr = real("encoder-lr");
  c.head_dim = integer("head-dim");
  c.prompt_dropout = real("prompt-dropout");
  c.prompt_init = text("prompt-init");
  c.prompt_init_text = text("prompt-init-text");
  c.lora_alpha = real("lora-alpha");
  c.lora_dropout = real("lora-dropout");
  c.lora_targets = text("lora-targets");
  c.prefix_projection = flag("prefix-projection");
  c.prefix_hidden = integer("prefix-hidden");
  c.prompt_template = text("prompt-template");
  c.target_template = text("target-template");
  c.verbalizers = text("verbalizers");
  c.skip_bad_rows = flag("skip-bad-rows");
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

void TrainConfig::check_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open config file");
  auto trim = [](const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
  };
  std::string raw;
  int64_t n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const auto line = trim(raw.substr(0, raw.find('#')));
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '[' || eq == std::string::npos) continue;
    const auto* k = find_train_key(trim(line.substr(0, eq)));
    if (!k || std::string(k->name) == "task") continue;
    try {
      check_value(*k, trim(line.substr(eq + 1)));
    } catch (const Error& e) {
      fail(path, ":", n, ": ", e.what());
    }
  }
}

std::string TrainConfig::resume_difference(const std::map<std::string, std::string>& recorded,
                                           const std::map<std::string, std::string>& kv) {
  for (const auto& [name, value] : recorded)
    if (!find_train_key(name)) return str("'", name, "' is recorded but is no key of this lopa");
  for (const auto& k : train_config_keys()) {
    const auto now = kv.count(k.name) ? kv.at(k.name) : std::string(k.default_value);
    const auto was = recorded.count(k.name) ? recorded.at(k.name) : std::string(value_when_absent(k));
    if (now != was) return str("'", k.name, "' was '", was, "', now '", now, "'");
  }
  return "";
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
  for (const auto& k : train_config_keys())
    if (!kv.count(k.name)) kv[k.name] = value_when_absent(k);
  return kv;
}

}  // namespace lopa
