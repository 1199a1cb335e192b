#include "experiments/demo/demo.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/tasks/synthetic_task.h"
#include "experiments/tasks/train_keys.h"
#include "runtime/base/error.h"
#include "runtime/io/atomic_file.h"

namespace lopa {

void write_synth_facts_data(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* split : {"train", "dev", "test"}) {
    std::string text;
    for (const auto& ex : load_synth_facts(split).examples) {
      nlohmann::ordered_json j = {{"id", ex.id}, {"prompt", synth_facts_prompt(ex)}, {"answer", ex.label},
                                  {"person", ex.fields.at("person")}, {"relation", ex.fields.at("relation")}};
      text += j.dump() + "\n";
    }
    write_file_atomic(dir + "/" + split + ".jsonl", text);
  }
}

namespace {

// "a, b ,,c" -> {"a", "b", "c"}: trimmed, empty items dropped.
std::vector<std::string> split_methods(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto b = item.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) continue;
    out.push_back(item.substr(b, item.find_last_not_of(" \t\r\n") - b + 1));
  }
  return out;
}

// Whether a method of `methods` reads `key`: a spec may not fix a key that none of its cells uses
// (`lopa demo --methods pt` has no rank).
bool used_by_any(const char* key, const std::vector<std::string>& methods) {
  const TrainKey* k = find_train_key(key);
  LOPA_CHECK(k, "experiments/train_keys.h: no key '", key, "'");
  if (!*k->methods) return true;
  for (const auto& m : split_methods(k->methods))
    if (std::find(methods.begin(), methods.end(), m) != methods.end()) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string j;
  for (const auto& x : v) j += (j.empty() ? "" : ", ") + x;
  return j;
}

}  // namespace

std::vector<std::string> write_demo_specs(const DemoSweepOptions& o) {
  const int64_t eval_every = o.eval_every != 0 ? o.eval_every : std::max<int64_t>(1, o.steps / 4);
  std::vector<std::string> prompt_methods, lora_methods;
  for (const auto& m : split_methods(o.methods)) (m == "lora" ? lora_methods : prompt_methods).push_back(m);
  LOPA_CHECK(!prompt_methods.empty() || !lora_methods.empty(), "lopa demo: --methods is empty");
  struct Group {
    std::string name;
    std::vector<std::string> methods;
    std::string lr;
  };
  std::vector<Group> groups;
  if (!prompt_methods.empty()) groups.push_back({"prompts", prompt_methods, o.lr});
  if (!lora_methods.empty()) groups.push_back({"lora", lora_methods, o.lora_lr});

  std::filesystem::create_directories(o.out);
  std::vector<std::string> paths;
  for (const auto& g : groups) {
    std::ostringstream s;
    s << "# Written by lopa demo.\nname = demo-" << g.name << "\nroot = " << o.out << "/runs/" << g.name << "\n\n"
      << "[grid]\nmodel = " << o.fm << "\ntask = synth-facts\nmethod = " << join(g.methods) << "\nseed = " << o.seeds
      << "\n\n"
      << "[fixed]\nmax-steps = " << o.steps << "\neval-every = " << eval_every << "\nlr = " << g.lr
      << "\nbatch-size = " << o.batch_size;
    if (used_by_any("rank", g.methods)) s << "\nrank = " << o.rank;
    if (used_by_any("num-virtual-tokens", g.methods)) s << "\nnum-virtual-tokens = " << o.num_virtual_tokens;
    if (used_by_any("prompt-init", g.methods)) s << "\nprompt-init = vocab";
    s << "\nmax-length = 32\neval-batch-size = 64\nschedule = linear\nwarmup-steps = "
      << std::max<int64_t>(1, o.steps / 10) << "\ndevice = cpu\n\n"
      << "[launch]\nexecutor = local\nranks-per-cell = " << o.ranks << "\ntp = " << o.tp << "\nreport-command =\n";
    paths.push_back(o.out + "/sweep-" + g.name + ".ini");
    write_file_atomic(paths.back(), s.str());
  }
  return paths;
}

}  // namespace lopa
