#include "experiments/scoring/scorer.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "experiments/tasks/cruxeval.h"
#include "experiments/tasks/dataset_io.h"
#include "experiments/tasks/mbpp.h"
#include "experiments/scoring/metrics.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/io/atomic_file.h"

namespace lopa {

namespace {

std::pair<const char*, const char*> prediction_keys(TaskFamily f) {
  switch (f) {
    case TaskFamily::Glue:
    case TaskFamily::Generated: return {"idx", "prediction"};
    case TaskFamily::Mbpp: return {"task_id", "completion"};
    case TaskFamily::CruxEval: return {"id", "prediction"};
  }
  return {"", ""};
}

std::string first_lines(const std::string& s, int n) {
  size_t end = 0;
  for (int i = 0; i < n && end < s.size(); ++i) {
    const size_t nl = s.find('\n', end);
    end = nl == std::string::npos ? s.size() : nl + 1;
  }
  return s.substr(0, end);
}

std::string where(const Prediction& p) { return p.line > 0 ? "predictions line " + std::to_string(p.line) : "prediction"; }

Metrics score_glue(const TaskInfo& info, const std::vector<Example>& examples, const std::vector<Prediction>& preds) {
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < examples.size(); ++i) {
    LOPA_CHECK(examples[i].label_index >= 0, info.name, ": example ", examples[i].id,
               " has no label (test splits cannot be scored)");
    by_id[examples[i].id] = i;
  }
  std::vector<std::string> predicted(examples.size());
  std::vector<bool> seen(examples.size(), false);
  for (const auto& p : preds) {
    auto it = by_id.find(p.id);
    LOPA_CHECK(it != by_id.end(), where(p), ": idx '", p.id, "' is not in this split of ", info.name);
    LOPA_CHECK(!seen[it->second], where(p), ": a second prediction for idx '", p.id, "'");
    LOPA_CHECK(std::find(info.labels.begin(), info.labels.end(), p.text) != info.labels.end(), where(p),
               ": prediction '", p.text, "' is not a label of ", info.name, " (labels as in the TSV)");
    seen[it->second] = true;
    predicted[it->second] = p.text;
  }
  std::vector<std::string> gold;
  int64_t missing = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    gold.push_back(examples[i].label);
    missing += !seen[i];
  }
  Metrics m;
  m["accuracy"] = accuracy(predicted, gold);
  if (!info.positive_label.empty()) m["f1"] = f1_score(predicted, gold, info.positive_label);
  m["n_examples"] = (double)examples.size();
  m["n_predictions"] = (double)preds.size();
  m["missing"] = (double)missing;
  return m;
}

Metrics score_code(const TaskInfo& info, const std::vector<Example>& examples, const std::vector<Prediction>& preds,
                   const ScoreOptions& opts, const Sandbox* sandbox, std::vector<SampleOutcome>* outcomes) {
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < examples.size(); ++i) by_id[examples[i].id] = i;
  const bool input_mode = info.name == "cruxeval-i";

  std::vector<std::string> programs;   // one per prediction ("" = rejected unrun)
  std::vector<size_t> example_of;
  for (const auto& p : preds) {
    auto it = by_id.find(p.id);
    LOPA_CHECK(it != by_id.end(), where(p), ": id '", p.id, "' is not in this split of ", info.name);
    const Example& ex = examples[it->second];
    example_of.push_back(it->second);
    if (info.family == TaskFamily::Mbpp) {
      programs.push_back(mbpp_program(ex, opts.mbpp_postprocess ? mbpp_postprocess(p.text) : p.text));
    } else {
      programs.push_back(cruxeval_program(ex, cruxeval_postprocess(p.text, input_mode), input_mode));
    }
  }
  std::vector<std::string> to_run;
  std::vector<size_t> run_index;
  for (size_t i = 0; i < programs.size(); ++i)
    if (!programs[i].empty()) {
      to_run.push_back(programs[i]);
      run_index.push_back(i);
    }
  std::vector<ExecResult> results;
  if (!to_run.empty()) {
    std::unique_ptr<Sandbox> own;
    if (!sandbox) {
      own = std::make_unique<Sandbox>(opts.sandbox);
      sandbox = own.get();
    }
    results = sandbox->run_all(to_run);
  }
  std::vector<SampleOutcome> out(preds.size());
  for (size_t i = 0; i < preds.size(); ++i) {
    out[i].id = preds[i].id;
    out[i].status = "rejected";
  }
  int64_t failed = 0, timeouts = 0, errors = 0;
  for (size_t r = 0; r < results.size(); ++r) {
    const ExecResult& e = results[r];
    SampleOutcome& o = out[run_index[r]];
    o.passed = e.passed;
    o.status = e.status;
    o.exit_code = e.exit_code;
    o.term_signal = e.term_signal;
    o.wall_seconds = e.wall_seconds;
    o.cpu_seconds = e.cpu_seconds;
    o.setup_seconds = e.setup_seconds;
    o.stderr_head = first_lines(e.err, kDetailStderrLines);
  }
  for (const auto& o : out) {
    if (o.passed) continue;
    if (o.status == "timeout") ++timeouts;
    else if (o.status == "error") ++errors;
    else ++failed;
  }

  std::vector<int64_t> n(examples.size(), 0), c(examples.size(), 0);
  for (size_t i = 0; i < preds.size(); ++i) {
    n[example_of[i]] += 1;
    c[example_of[i]] += out[i].passed;
  }
  int64_t missing = 0, min_n = -1, passed_samples = 0;
  for (size_t e = 0; e < examples.size(); ++e) {
    passed_samples += c[e];
    if (n[e] == 0) {
      ++missing;
      continue;
    }
    min_n = min_n < 0 ? n[e] : std::min(min_n, n[e]);
  }
  Metrics m;
  for (int64_t k : opts.ks) {
    if (min_n < 1 || k > min_n) {
      if (k == 1) m["pass_at_1"] = 0.0;
      continue;
    }
    double sum = 0;
    for (size_t e = 0; e < examples.size(); ++e)
      if (n[e] > 0) sum += pass_at_k(n[e], c[e], k);  // problems without samples add 0
    m["pass_at_" + std::to_string(k)] = examples.empty() ? 0.0 : sum / (double)examples.size();
  }
  m["n_examples"] = (double)examples.size();
  m["n_predictions"] = (double)preds.size();
  m["samples_per_problem"] = (double)std::max<int64_t>(min_n, 0);
  m["passed_samples"] = (double)passed_samples;
  m["missing"] = (double)missing;
  m["failed"] = (double)failed;
  m["timeouts"] = (double)timeouts;
  m["errors"] = (double)errors;
  if (outcomes) *outcomes = std::move(out);
  return m;
}

}  // namespace

std::vector<Prediction> read_predictions(const std::string& task, const std::string& path) {
  const TaskInfo& info = task_info(task);
  const auto [id_key, text_key] = prediction_keys(info.family);
  TextLines tl = read_text_lines(path);
  std::vector<Prediction> out;
  for (size_t i = 0; i < tl.lines.size(); ++i) {
    const std::string& line = tl.lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Prediction p;
    p.line = (int64_t)i + 1;
    std::string why;
    try {
      auto j = parse_json(line);
      LOPA_CHECK(j.is_object(), "not a JSON object");
      LOPA_CHECK(j.contains(id_key), "missing \"", id_key, "\"");
      LOPA_CHECK(j.contains(text_key), "missing \"", text_key, "\"");
      const auto& id = j[id_key];
      if (id.is_string()) p.id = id.get<std::string>();
      else if (id.is_number_integer()) p.id = std::to_string(id.get<int64_t>());
      else fail("\"", id_key, "\" must be a string or an integer");
      const auto& t = j[text_key];
      if (t.is_string()) p.text = t.get<std::string>();
      else if (info.family == TaskFamily::Glue && t.is_number_integer()) p.text = std::to_string(t.get<int64_t>());
      else fail("\"", text_key, "\" must be a string");
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!why.empty())
      fail(path, ":", p.line, ": malformed prediction (expected {\"", id_key, "\": ..., \"", text_key, "\": ...}): ", why);
    out.push_back(std::move(p));
  }
  return out;
}

std::string prediction_line(const std::string& task, const std::string& id, const std::string& text) {
  const TaskInfo& info = task_info(task);
  const auto [id_key, text_key] = prediction_keys(info.family);
  nlohmann::json j;
  const bool numeric = !id.empty() && id.size() < 18 && id.find_first_not_of("0123456789") == std::string::npos;
  if (info.family == TaskFamily::Glue && numeric) j[id_key] = std::stoll(id);
  else j[id_key] = id;
  j[text_key] = text;
  return j.dump();
}

Metrics score_predictions(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<Prediction>& predictions, const ScoreOptions& opts,
                          const Sandbox* sandbox, std::vector<SampleOutcome>* outcomes) {
  const TaskInfo& info = task_info(task);
  if (info.family == TaskFamily::Glue || info.family == TaskFamily::Generated)
    return score_glue(info, examples, predictions);
  return score_code(info, examples, predictions, opts, sandbox, outcomes);
}

void write_score_details(const std::string& path, const std::vector<SampleOutcome>& outcomes) {
  std::string text;
  for (const auto& o : outcomes) {
    nlohmann::ordered_json j;
    j["id"] = o.id;
    j["status"] = o.status;
    j["passed"] = o.passed;
    j["exit_code"] = o.exit_code >= 0 ? nlohmann::ordered_json(o.exit_code) : nlohmann::ordered_json();
    if (o.term_signal) j["signal"] = o.term_signal;
    j["wall_seconds"] = std::round(o.wall_seconds * 1e4) / 1e4;
    j["cpu_seconds"] = std::round(o.cpu_seconds * 1e4) / 1e4;
    j["setup_seconds"] = std::round(o.setup_seconds * 1e4) / 1e4;
    j["stderr"] = o.stderr_head;
    // Programs may print anything: invalid UTF-8 becomes U+FFFD rather than an exception.
    text += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, text);
}

std::string metrics_json(const Metrics& m) {
  std::string s = "{";
  for (const auto& [k, v] : m) {
    if (s.size() > 1) s += ", ";
    s += nlohmann::json(k).dump() + ": ";
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) s += std::to_string((int64_t)v);
    else s += nlohmann::json(v).dump();
  }
  return s + "}";
}

}  // namespace lopa
