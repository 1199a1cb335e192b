// Cloze templates and label words of the paper's GLUE setting on a masked LM (roberta-large as the
// frozen FM), as the official LoPA-NLU code builds them (jabhinav/Prompt-Tuning-Strikes-Back-with-LOPA-NLU,
// utils/data_processors.py): one text with a <mask> where the label word goes, tokenized with the FM's
// special tokens (<s> … </s>); each label word is tokenized as " " + word and must be one token.
//   sst2   "{sentence} . It was <mask> ."              terrible | great      (0 | 1)
//   mrpc   "{sentence1} ? <mask> , {sentence2}"         No | Yes             (0 | 1)
//   rte    "{sentence1} ? <mask> , {sentence2}"         Yes | No             (entailment | not_entailment)
//   qnli   "{question} ? <mask> , {sentence}"           Yes | No             (entailment | not_entailment)
//   qqp    "{question1} <mask> , {question2}"           No | Yes             (0 | 1)
//   mnli   "{sentence1} ? <mask> , {sentence2}"         Yes | Maybe | No     (entailment | neutral | contradiction)
#pragma once

#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

// The mask placeholder written in cloze templates; the FM tokenizer's own mask token replaces it.
inline constexpr const char* kClozeMask = "<mask>";

// The official template of a GLUE task; a non-GLUE task is an error naming it.
std::string default_cloze_template(const std::string& task);
// The label words in TaskInfo::labels order, without the leading space.
std::vector<std::string> default_cloze_words(const std::string& task);
// The cloze text of an example: `tmpl` ("" = the default) rendered with the example's fields, the
// placeholder replaced by `mask_token`. A template without exactly one <mask> is an error.
std::string render_cloze(const std::string& task, const Example& ex, const std::string& tmpl,
                         const std::string& mask_token);
// True when a (prompt) template names the mask: a masked-LM template, which a decoder cannot run.
bool is_cloze_template(const std::string& tmpl);

}  // namespace lopa
