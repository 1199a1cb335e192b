#include "experiments/tasks/cruxeval.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "experiments/tasks/dataset_io.h"
#include "experiments/tasks/templates.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

namespace {

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

std::string strip(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string cruxeval_file(const std::string& data_dir) {
  return join_path(join_path(data_dir, "cruxeval"), "cruxeval.jsonl");
}

std::vector<int64_t> cruxeval_split_indices(int64_t n, const std::string& split, uint64_t seed) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  if (split == "all") return idx;
  LOPA_CHECK(split == "train" || split == "test", "cruxeval: unknown split '", split, "' (train, test, all)");
  SplitMix64 rng{seed};
  for (int64_t i = n - 1; i >= 1; --i) {
    int64_t j = (int64_t)(rng.next() % (uint64_t)(i + 1));
    std::swap(idx[i], idx[j]);
  }
  const int64_t k = std::min<int64_t>(kCruxEvalTrainSize, n);
  std::vector<int64_t> out = split == "train" ? std::vector<int64_t>(idx.begin(), idx.begin() + k)
                                              : std::vector<int64_t>(idx.begin() + k, idx.end());
  std::sort(out.begin(), out.end());
  return out;
}

Dataset load_cruxeval(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                      const LoadOptions& opts) {
  const std::string path = cruxeval_file(data_dir);
  const bool input_mode = info.name == "cruxeval-i";
  TextLines tl = read_text_lines(path);
  std::vector<Example> all;
  SkippedRows skipped;
  for (size_t i = 0; i < tl.lines.size(); ++i) {
    const std::string& line = tl.lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Example ex;
    std::string why;
    try {
      auto j = parse_json(line);
      LOPA_CHECK(j.is_object(), "not a JSON object");
      for (const char* k : {"code", "input", "output", "id"}) {
        LOPA_CHECK(j.contains(k) && j[k].is_string(), "missing string field '", k, "'");
        ex.fields[k] = j[k].get<std::string>();
      }
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!why.empty()) {
      if (opts.skip_bad_rows) {
        skipped.add((int64_t)i + 1, why);
        continue;
      }
      fail(path, ":", i + 1, ": malformed row: ", why, " (use skip-bad-rows to skip such rows)");
    }
    ex.id = ex.fields["id"];
    ex.tests = ex.fields["code"];
    ex.entry_point = "f";
    ex.reference = input_mode ? ex.fields["input"] : ex.fields["output"];
    ex.label = ex.reference;
    ex.prompt = render_template(default_prompt_template(info.name), ex.fields);
    all.push_back(std::move(ex));
  }
  if (all.empty()) fail_no_examples(path, info.name, (int64_t)tl.lines.size(), skipped);
  Dataset ds;
  ds.task = info.name;
  ds.split = split;
  ds.files = {path};
  ds.skipped_rows = skipped.count;
  for (int64_t i : cruxeval_split_indices((int64_t)all.size(), split, opts.cruxeval_seed)) {
    all[i].row = i;
    ds.examples.push_back(all[i]);
  }
  // A short file (the release has 800 samples) leaves the test split empty.
  LOPA_CHECK(!ds.examples.empty(), path, ":", tl.lines.size(), ": no examples for ", info.name, " ", split, ": the file has ",
             all.size(), " samples and this split takes those after the first ", kCruxEvalTrainSize,
             " of the seeded permutation (the release has 800)");
  return ds;
}

void write_cruxeval_split(const std::string& data_dir, uint64_t seed, const std::string& out_path) {
  LoadOptions o;
  o.cruxeval_seed = seed;
  nlohmann::json j;
  j["seed"] = seed;
  j["source"] = cruxeval_file(data_dir);
  for (const char* split : {"train", "test"}) {
    auto ds = load_cruxeval(task_info("cruxeval-o"), data_dir, split, o);
    std::vector<std::string> ids;
    for (const auto& e : ds.examples) ids.push_back(e.id);
    j[split] = ids;
  }
  std::ofstream out(out_path);
  LOPA_CHECK(out, out_path, ": cannot write the CruxEval split");
  out << j.dump(1) << "\n";
}

std::string cruxeval_postprocess(const std::string& prediction, bool input_mode) {
  std::string g = prediction;
  size_t a = g.find("[ANSWER]");
  if (a != std::string::npos) g = g.substr(a + 8);
  size_t e = g.find("[/ANSWER]");
  if (e != std::string::npos) g = g.substr(0, e);
  g = strip(g);
  if (g.rfind("assert", 0) == 0) {
    size_t eq = g.find("==");
    if (input_mode) {
      if (eq != std::string::npos) g = strip(g.substr(0, eq));
      g = strip(g.substr(6));  // drop "assert"
    } else if (eq != std::string::npos) {
      size_t next = g.find("==", eq + 2);  // Python's split("==")[1]
      g = strip(g.substr(eq + 2, next == std::string::npos ? std::string::npos : next - eq - 2));
    }
  }
  if (input_mode && g.rfind("f(", 0) != 0) g = "f(" + g + ")";
  return g;
}

std::string cruxeval_program(const Example& ex, const std::string& g, bool input_mode) {
  const std::string& code = ex.fields.at("code");
  const std::string& input = ex.fields.at("input");
  const std::string& output = ex.fields.at("output");
  if (input_mode && g.find("f(") == std::string::npos) return "";
  if (!input_mode && g.find("f(" + input + ")") != std::string::npos) return "";
  return code + "\nassert " + output + " == " + g;
}

}  // namespace lopa
