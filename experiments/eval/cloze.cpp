#include "experiments/eval/cloze.h"

#include <algorithm>
#include <cmath>

#include "experiments/eval/batching.h"
#include "experiments/eval/prompt_method.h"
#include "experiments/scoring/scorer.h"
#include "experiments/tasks/cloze_templates.h"
#include "lopa/method.h"
#include "runtime/base/error.h"
#include "runtime/model/autocast.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

bool is_masked_lm(const CausalLM& fm) {
  const auto& spec = fm.architecture().spec();
  return !spec.causal && spec.has_lm_head;
}

void check_fm_role(const CausalLM& fm, const std::string& model_dir, const std::string& task,
                   const std::string& prompt_template) {
  const auto& spec = fm.architecture().spec();
  const auto& arch = fm.config().architecture;
  if (spec.causal) {
    LOPA_CHECK(!is_cloze_template(prompt_template), model_dir, ": ", arch, " is a decoder; the prompt template '",
               prompt_template, "' is a masked-LM template (it names ", kClozeMask,
               "), which needs a *ForMaskedLM FM");
    return;
  }
  LOPA_CHECK(spec.has_lm_head, model_dir, ": ", arch,
             " is a base encoder without a vocabulary head; as the FM it needs a *ForMaskedLM checkpoint "
             "(as --encoder of LoPA / IDPG it works)");
  LOPA_CHECK(task_info(task).family == TaskFamily::Glue, model_dir, ": ", arch, " is a masked LM; it cannot be the FM of ",
             task, " (a generation task needs a decoder; a masked-LM FM runs the GLUE tasks as cloze)");
}

namespace {
// Cut from the right to `max_length`, the last token (</s>) kept: the official tokenizer(truncation=True).
void cut_right(std::vector<int64_t>& ids, int64_t max_length) {
  if (static_cast<int64_t>(ids.size()) <= max_length) return;
  const int64_t last = ids.back();
  ids.resize(max_length - 1);
  ids.push_back(last);
}
int64_t one_token(const Tokenizer& tok, const std::string& word, const std::string& task) {
  const auto ids = tok.encode(word, false);
  LOPA_CHECK(ids.size() == 1, task, ": label word '", word, "' is ", ids.size(),
             " tokens under the FM's tokenizer; a cloze label word must be one token");
  return ids[0];
}
}  // namespace

std::vector<TrainItem> make_cloze_items(const std::string& task, const std::vector<Example>& examples,
                                        const TemplateConfig& tmpl, const Tokenizer& tok, const Tokenizer* encoder_tok,
                                        int64_t max_length, int64_t encoder_max_length) {
  const TaskInfo& info = task_info(task);
  LOPA_CHECK(info.family == TaskFamily::Glue, task, ": a masked-LM FM runs the GLUE tasks only");
  const auto mask = tok.mask_id();
  LOPA_CHECK(mask.has_value(), task, ": the FM's tokenizer has no mask token (", tok.describe(), ")");
  const std::string mask_text = tok.id_to_token(*mask);
  std::vector<std::string> words;
  if (tmpl.verbalizers.empty()) {
    for (const auto& w : default_cloze_words(task)) words.push_back(" " + w);  // as the official ' ' + v
  } else {
    words = verbalizers(task, tmpl);
  }
  LOPA_CHECK(words.size() == info.labels.size(), task, ": ", words.size(), " label words for ", info.labels.size(),
             " labels");
  std::vector<std::vector<int64_t>> targets;
  for (const auto& w : words) targets.push_back({one_token(tok, w, task)});
  LOPA_CHECK(max_length >= 3, "max-length ", max_length, " is too small for a cloze text");

  std::vector<TrainItem> items;
  items.reserve(examples.size());
  for (const auto& ex : examples) {
    TrainItem it;
    it.id = ex.id;
    it.targets = targets;
    it.target_labels = info.labels;
    it.gold = ex.label_index;
    const auto text = render_cloze(task, ex, tmpl.prompt, mask_text);
    it.prompt = tok.encode(text, true);
    cut_right(it.prompt, max_length);
    for (size_t i = 0; i < it.prompt.size(); ++i)
      if (it.prompt[i] == *mask) {
        it.mask_pos = static_cast<int64_t>(i);
        break;
      }
    if (it.mask_pos < 0) {  // cut off by the truncation: the official code puts it before the last token
      LOPA_CHECK(it.prompt.size() >= 2, task, " example ", ex.id, ": the cloze text encodes to no mask position");
      it.mask_pos = static_cast<int64_t>(it.prompt.size()) - 2;
      it.prompt[it.mask_pos] = *mask;
    }
    if (encoder_tok) {
      const auto m = encoder_tok->mask_id();
      it.encoder_input = encoder_tok->encode(
          render_cloze(task, ex, tmpl.prompt, m ? encoder_tok->id_to_token(*m) : std::string(kClozeMask)), true);
      LOPA_CHECK(encoder_max_length >= 2, "encoder-max-length ", encoder_max_length, " is too small");
      cut_right(it.encoder_input, encoder_max_length);
    } else {
      it.encoder_input = it.prompt;
    }
    items.push_back(std::move(it));
  }
  return items;
}

TokenBatch cloze_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id) {
  int64_t T = 0;
  for (auto i : idx) {
    const auto& it = items.at(i);
    LOPA_CHECK(it.mask_pos >= 0, "cloze_batch: item ", it.id, " is not a cloze item");
    T = std::max<int64_t>(T, it.prompt.size());
  }
  const int64_t B = idx.size();
  auto ids = at::full({B, T}, pad_id, at::kLong), mask = at::zeros({B, T}, at::kLong),
       labels = at::full({B, T}, -100, at::kLong);
  auto I = ids.accessor<int64_t, 2>(), M = mask.accessor<int64_t, 2>(), L = labels.accessor<int64_t, 2>();
  TokenBatch b;
  for (int64_t r = 0; r < B; ++r) {
    const auto& it = items[idx[r]];
    for (size_t j = 0; j < it.prompt.size(); ++j) I[r][j] = it.prompt[j], M[r][j] = 1;
    const bool labelled = it.gold >= 0;
    if (labelled) L[r][it.mask_pos] = it.targets.at(it.gold).at(0);
    b.item.push_back(idx[r]);
    b.candidate.push_back(it.gold);
    b.target_tokens.push_back(labelled ? 1 : 0);
    b.num_target_tokens += labelled ? 1 : 0;
  }
  b.ids = ids;
  b.mask = mask;
  b.labels = labels;
  return b;
}

at::Tensor cloze_forward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& enc,
                         at::Tensor& labels) {
  // Right after <s>: the official LoPA-NLU input is <s> Z text </s>.
  return method_forward(method, fm, batch, enc, labels, InputLayout{1, true});
}

std::pair<at::Tensor, at::Tensor> mask_logits(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels) {
  auto keep = labels.ne(-100);
  auto h = hidden.masked_select(keep.unsqueeze(-1)).view({-1, hidden.size(2)});
  return {fm.lm_logits(h).to(at::kFloat), labels.masked_select(keep)};
}

at::Tensor cloze_loss(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels) {
  auto [logits, gold] = mask_logits(fm, hidden, labels);
  if (gold.numel() == 0) return at::zeros({}, logits.options());
  return at::cross_entropy_loss(logits, gold);
}

double cloze_micro_batch_backward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& enc,
                                  double scale, at::ScalarType autocast) {
  at::Tensor loss;
  {
    AutocastGuard amp(fm.device(), autocast);
    at::Tensor labels;
    auto hidden = cloze_forward(method, fm, batch, enc, labels);
    loss = cloze_loss(fm, hidden, labels).to(at::kFloat);
  }
  (loss * scale).backward();
  return loss.item<double>();
}

EvalResult evaluate_cloze(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<TrainItem>& items, Method& method, CausalLM& fm, const at::Tensor& enc,
                          int64_t batch_size, int64_t pad_id) {
  at::NoGradGuard no_grad;
  const bool was_training = method.training();
  method.set_training(false);
  // Items of similar length batch together (results are kept by item index, reported in item order).
  const auto order = longest_first(items);
  std::vector<std::vector<double>> word(items.size());  // per item: log p(label word) at <mask>
  for (size_t s = 0; s < order.size(); s += batch_size) {
    std::vector<int64_t> idx(order.begin() + s, order.begin() + std::min(order.size(), s + batch_size));
    auto batch = cloze_batch(items, idx, pad_id);
    // Every row is scored, labelled or not: mark each mask position with a stand-in label.
    auto score_labels = batch.labels.clone();
    for (size_t r = 0; r < idx.size(); ++r) score_labels[r][items[idx[r]].mask_pos] = items[idx[r]].targets[0][0];
    TokenBatch scoring = batch;
    scoring.labels = score_labels;
    at::Tensor e;
    if (method.needs_encoder()) e = enc.index_select(0, at::tensor(idx, at::kLong).to(enc.device()));
    at::Tensor labels;
    auto hidden = cloze_forward(method, fm, scoring, e, labels);
    auto logp = at::log_softmax(mask_logits(fm, hidden, labels).first, -1).to(at::kDouble).cpu();  // R×V, row order
    for (size_t r = 0; r < idx.size(); ++r) {
      const auto& it = items[idx[r]];
      for (const auto& t : it.targets) word[idx[r]].push_back(logp[r][t[0]].item<double>());
    }
  }
  EvalResult out;
  std::vector<Prediction> preds;
  double nll = 0;
  int64_t n_gold = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    const auto& it = items[k];
    const int64_t best = predict_label(word[k]);
    out.predictions.emplace_back(it.id, it.target_labels.at(best));
    Prediction p;
    p.id = it.id;
    p.text = it.target_labels.at(best);
    preds.push_back(p);
    if (it.gold >= 0) nll += -word[k][it.gold], ++n_gold;
  }
  method.set_training(was_training);
  const ScoreOptions defaults;
  out.metrics = score_predictions(task, examples, preds, defaults);
  if (n_gold) out.metrics["loss"] = nll / n_gold;
  return out;
}

}  // namespace lopa
