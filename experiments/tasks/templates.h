// Prompt templates and GLUE verbalizers: how an Example becomes the (prompt text, target text) pair a
// decoder FM is trained on, and how per-label log-likelihoods become a predicted label.
//
// A template is text with {field} placeholders filled from Example::fields ("{{" and "}}" are literal
// braces). Defaults, per task (targets start with a space so BPE tokenizers see a word token):
//   sst2   "Sentence: {sentence}\nSentiment:"                                   -> " negative" | " positive"  (0|1)
//   rte    "Premise: {sentence1}\nHypothesis: {sentence2}\nDoes the premise entail the hypothesis? Answer:"
//                                                                              -> " yes" | " no"  (entailment|not_entailment)
//   mrpc   "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same thing? Answer:"
//                                                                              -> " no" | " yes"  (0|1)
//   qnli   "Question: {question}\nSentence: {sentence}\nDoes the sentence answer the question? Answer:"
//                                                                              -> " yes" | " no"  (entailment|not_entailment)
//   qqp    "Question 1: {question1}\nQuestion 2: {question2}\nDo both questions ask the same thing? Answer:"
//                                                                              -> " no" | " yes"  (0|1)
//   mnli   "Premise: {sentence1}\nHypothesis: {sentence2}\nDoes the premise entail the hypothesis? Answer:"
//                                                                              -> " yes" | " maybe" | " no"
//                                                                                 (entailment|neutral|contradiction)
//   mbpp        "{prompt}" -> "{canonical_solution}"   (the completion continues the prompt, as mxeval runs it)
//   cruxeval-o  the official direct output prompt of facebookresearch/cruxeval (prompts.py,
//               make_direct_output_prompt) -> "assert f({input}) == {output}\n[/ANSWER]\n"
//   cruxeval-i  the official direct input prompt (make_direct_input_prompt) -> the same target
// Overrides come from config strings, where "\n", "\t" and "\\" are written as escapes (unescape_template).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

struct TemplateConfig {
  std::string prompt;       // "" = the task's default prompt template
  std::string target;       // "" = default target template (GLUE: the verbalizer of the label)
  std::string verbalizers;  // "" = default; else one word per label, '|'-separated, in label order
};

struct PromptPair {
  std::string prompt, target;
};

std::string default_prompt_template(const std::string& task);
std::string default_target_template(const std::string& task);  // "" for GLUE (the verbalizer is the target)
// Per label index (TaskInfo::labels order): the target text of that label. GLUE tasks only.
std::vector<std::string> default_verbalizers(const std::string& task);
std::vector<std::string> verbalizers(const std::string& task, const TemplateConfig& cfg = {});

// Fills {field}s; an unknown field or an unclosed brace is a lopa::Error naming the template.
std::string render_template(const std::string& tmpl, const std::map<std::string, std::string>& fields);
// "\n" -> newline, "\t" -> tab, "\\" -> backslash; other characters unchanged.
std::string unescape_template(const std::string& s);

// The training pair of a labeled example (GLUE: target = verbalizer of its label; code tasks: the reference).
PromptPair make_prompt_pair(const std::string& task, const Example& ex, const TemplateConfig& cfg = {});
// GLUE: one pair per label, in label order (same prompt), for scoring each label's log-likelihood.
std::vector<PromptPair> label_candidates(const std::string& task, const Example& ex, const TemplateConfig& cfg = {});

// Where generation stops for a code task (text after the first occurrence is dropped):
// MBPP: mbpp_stop_sequences() (top-level code after the function body); CruxEval: "[/ANSWER]" (the
// official stop word). GLUE: none (labels are scored, not generated).
std::vector<std::string> stop_sequences(const std::string& task);

// Argmax of per-label log-likelihoods: NaN entries never win, ties go to the lowest index, and the
// result is always a valid index (0 when every entry is NaN). Empty input is an error.
int64_t predict_label(const std::vector<double>& label_loglik);
// The label string (as in the TSV) that predict_label picks.
std::string predict_label_name(const std::string& task, const std::vector<double>& label_loglik);

}  // namespace lopa
