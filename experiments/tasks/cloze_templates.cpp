#include "experiments/tasks/cloze_templates.h"

#include "experiments/tasks/templates.h"
#include "runtime/base/error.h"

namespace lopa {

namespace {
struct Cloze {
  const char* task;
  const char* tmpl;
  std::vector<std::string> words;
};
const std::vector<Cloze>& table() {
  static const std::vector<Cloze> t = {
      {"sst2", "{sentence} . It was <mask> .", {"terrible", "great"}},
      {"mrpc", "{sentence1} ? <mask> , {sentence2}", {"No", "Yes"}},
      {"rte", "{sentence1} ? <mask> , {sentence2}", {"Yes", "No"}},
      {"qnli", "{question} ? <mask> , {sentence}", {"Yes", "No"}},
      {"qqp", "{question1} <mask> , {question2}", {"No", "Yes"}},
      {"mnli", "{sentence1} ? <mask> , {sentence2}", {"Yes", "Maybe", "No"}},
  };
  return t;
}
const Cloze& entry(const std::string& task) {
  for (const auto& c : table())
    if (task == c.task) return c;
  fail(task, ": no cloze template (a masked-LM FM runs the GLUE tasks sst2, mrpc, rte, qnli, qqp, mnli only)");
}
}  // namespace

std::string default_cloze_template(const std::string& task) { return entry(task).tmpl; }
std::vector<std::string> default_cloze_words(const std::string& task) { return entry(task).words; }

bool is_cloze_template(const std::string& tmpl) { return tmpl.find(kClozeMask) != std::string::npos; }

std::string render_cloze(const std::string& task, const Example& ex, const std::string& tmpl,
                         const std::string& mask_token) {
  const std::string t = tmpl.empty() ? default_cloze_template(task) : tmpl;
  const auto at = t.find(kClozeMask);
  LOPA_CHECK(at != std::string::npos && t.find(kClozeMask, at + 1) == std::string::npos, "prompt-template '", t,
             "': a masked-LM template needs exactly one ", kClozeMask);
  // Rendered in two halves so that a field's own "<mask>" text is never taken for the placeholder.
  const std::string len = kClozeMask;
  return render_template(t.substr(0, at), ex.fields) + mask_token +
         render_template(t.substr(at + len.size()), ex.fields);
}

}  // namespace lopa
