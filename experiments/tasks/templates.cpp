#include "experiments/tasks/templates.h"

#include <cmath>

#include "experiments/tasks/mbpp.h"
#include "runtime/base/error.h"

namespace lopa {

namespace {

// The direct (non-chain-of-thought) prompts of CruxEval, as in facebookresearch/cruxeval prompts.py
// (make_direct_output_prompt / make_direct_input_prompt), which the LoPA code also uses.
const char* kCruxOutputPrompt =
    "You are given a Python function and an assertion containing an input to the function. Complete the "
    "assertion with a literal (no unsimplified expressions, no function calls) containing the output when "
    "executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT "
    "output any extra information. Provide the full assertion with the correct output in [ANSWER] and "
    "[/ANSWER] tags, following the examples.\n"
    "\n"
    "[PYTHON]\n"
    "def f(n):\n"
    "    return n\n"
    "assert f(17) == ?\?\n"
    "[/PYTHON]\n"
    "[ANSWER]\n"
    "assert f(17) == 17\n"
    "[/ANSWER]\n"
    "\n"
    "[PYTHON]\n"
    "def f(s):\n"
    "    return s + \"a\"\n"
    "assert f(\"x9j\") == ?\?\n"
    "[/PYTHON]\n"
    "[ANSWER]\n"
    "assert f(\"x9j\") == \"x9ja\"\n"
    "[/ANSWER]\n"
    "\n"
    "[PYTHON]\n"
    "{code}\n"
    "assert f({input}) == ?\?\n"
    "[/PYTHON]\n"
    "[ANSWER]\n";

const char* kCruxInputPrompt =
    "You will be given a function f and an output in the form f(?\?) == output. Find any input such that "
    "executing f on the input leads to the given output. There may be multiple answers, but you should only "
    "output one. In [ANSWER] and [/ANSWER] tags, complete the assertion with one such input that will produce "
    "the output when executing the function.\n"
    "\n"
    "[PYTHON]\n"
    "def f(my_list):\n"
    "    count = 0\n"
    "    for i in my_list:\n"
    "        if len(i) % 2 == 0:\n"
    "            count += 1\n"
    "    return count\n"
    "assert f(?\?) == 3\n"
    "[/PYTHON]\n"
    "[ANSWER]\n"
    "assert f([\"mq\", \"px\", \"zy\"]) == 3\n"
    "[/ANSWER]\n"
    "\n"
    "[PYTHON]\n"
    "def f(s1, s2):\n"
    "    return s1 + s2\n"
    "assert f(?\?) == \"banana\"\n"
    "[/PYTHON]\n"
    "[ANSWER]\n"
    "assert f(\"ba\", \"nana\") == \"banana\"\n"
    "[/ANSWER]\n"
    "\n"
    "[PYTHON]\n"
    "{code}\n"
    "assert f(?\?) == {output}\n"
    "[/PYTHON]\n"
    "[ANSWER]\n";

std::vector<std::string> split_bars(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t b = s.find('|', start);
    out.push_back(s.substr(start, b == std::string::npos ? std::string::npos : b - start));
    if (b == std::string::npos) return out;
    start = b + 1;
  }
}

}  // namespace

std::string default_prompt_template(const std::string& task) {
  const std::string nli = "Premise: {sentence1}\nHypothesis: {sentence2}\nDoes the premise entail the hypothesis? Answer:";
  if (task == "sst2") return "Sentence: {sentence}\nSentiment:";
  if (task == "rte" || task == "mnli") return nli;
  if (task == "mrpc") return "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same thing? Answer:";
  if (task == "qnli") return "Question: {question}\nSentence: {sentence}\nDoes the sentence answer the question? Answer:";
  if (task == "qqp") return "Question 1: {question1}\nQuestion 2: {question2}\nDo both questions ask the same thing? Answer:";
  if (task == "mbpp") return "{prompt}";
  if (task == "cruxeval-o") return kCruxOutputPrompt;
  if (task == "cruxeval-i") return kCruxInputPrompt;
  task_info(task);  // throws for unknown names
  fail("templates: no default template for task '", task, "'");
}

std::string default_target_template(const std::string& task) {
  if (task == "mbpp") return "{canonical_solution}";
  if (task == "cruxeval-o" || task == "cruxeval-i") return "assert f({input}) == {output}\n[/ANSWER]\n";
  task_info(task);
  return "";
}

std::vector<std::string> default_verbalizers(const std::string& task) {
  if (task == "sst2") return {" negative", " positive"};
  if (task == "rte" || task == "qnli") return {" yes", " no"};
  if (task == "mrpc" || task == "qqp") return {" no", " yes"};
  if (task == "mnli") return {" yes", " maybe", " no"};
  fail("templates: task '", task, "' has no verbalizers (only GLUE tasks do)");
}

std::vector<std::string> verbalizers(const std::string& task, const TemplateConfig& cfg) {
  if (cfg.verbalizers.empty()) return default_verbalizers(task);
  auto v = split_bars(unescape_template(cfg.verbalizers));
  const auto& labels = task_info(task).labels;
  LOPA_CHECK(v.size() == labels.size(), "templates: verbalizers '", cfg.verbalizers, "' give ", v.size(),
             " words, task ", task, " has ", labels.size(), " labels");
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = i + 1; j < v.size(); ++j)
      LOPA_CHECK(v[i] != v[j], "templates: verbalizers '", cfg.verbalizers, "' repeat '", v[i], "'");
  return v;
}

std::string unescape_template(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[i + 1];
      if (c == 'n') { out += '\n'; ++i; continue; }
      if (c == 't') { out += '\t'; ++i; continue; }
      if (c == '\\') { out += '\\'; ++i; continue; }
    }
    out += s[i];
  }
  return out;
}

std::string render_template(const std::string& tmpl, const std::map<std::string, std::string>& fields) {
  std::string out;
  out.reserve(tmpl.size() * 2);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c == '{') {
      size_t close = tmpl.find('}', i + 1);
      LOPA_CHECK(close != std::string::npos, "template: unclosed '{' at offset ", i, " in \"", tmpl.substr(0, 60), "\"");
      std::string name = tmpl.substr(i + 1, close - i - 1);
      auto it = fields.find(name);
      if (it == fields.end()) {
        std::string have;
        for (const auto& kv : fields) have += (have.empty() ? "" : ", ") + kv.first;
        fail("template: unknown field {", name, "} (fields: ", have, ")");
      }
      out += it->second;
      i = close;
      continue;
    }
    LOPA_CHECK(c != '}', "template: stray '}' at offset ", i, " (write }} for a literal brace)");
    out += c;
  }
  return out;
}

static std::string prompt_of(const std::string& task, const Example& ex, const TemplateConfig& cfg) {
  return render_template(cfg.prompt.empty() ? default_prompt_template(task) : unescape_template(cfg.prompt), ex.fields);
}

PromptPair make_prompt_pair(const std::string& task, const Example& ex, const TemplateConfig& cfg) {
  const TaskInfo& info = task_info(task);
  PromptPair p;
  p.prompt = prompt_of(task, ex, cfg);
  if (info.family == TaskFamily::Glue && cfg.target.empty()) {
    LOPA_CHECK(ex.label_index >= 0, task, ": example ", ex.id, " has no label (test split?); no training target");
    p.target = verbalizers(task, cfg)[ex.label_index];
  } else {
    const std::string t = cfg.target.empty() ? default_target_template(task) : unescape_template(cfg.target);
    p.target = render_template(t, ex.fields);
  }
  return p;
}

std::vector<PromptPair> label_candidates(const std::string& task, const Example& ex, const TemplateConfig& cfg) {
  const std::string prompt = prompt_of(task, ex, cfg);
  std::vector<PromptPair> out;
  for (const auto& v : verbalizers(task, cfg)) out.push_back({prompt, v});
  return out;
}

std::vector<std::string> stop_sequences(const std::string& task) {
  const TaskInfo& info = task_info(task);
  if (info.family == TaskFamily::Mbpp) return mbpp_stop_sequences();
  if (info.family == TaskFamily::CruxEval) return {"[/ANSWER]"};
  return {};
}

int64_t predict_label(const std::vector<double>& ll) {
  LOPA_CHECK(!ll.empty(), "predict_label: no label log-likelihoods");
  int64_t best = -1;
  for (size_t i = 0; i < ll.size(); ++i) {
    if (std::isnan(ll[i])) continue;
    if (best < 0 || ll[i] > ll[best]) best = (int64_t)i;
  }
  return best < 0 ? 0 : best;
}

std::string predict_label_name(const std::string& task, const std::vector<double>& ll) {
  const auto& labels = task_info(task).labels;
  LOPA_CHECK(ll.size() == labels.size(), "predict_label: ", ll.size(), " log-likelihoods for task ", task,
             " with ", labels.size(), " labels");
  return labels[predict_label(ll)];
}

}  // namespace lopa
