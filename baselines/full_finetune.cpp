#include "baselines/full_finetune.h"

#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

FullFinetune::FullFinetune(CausalLM& fm) : fm_(&fm) {}

void FullFinetune::attach(CausalLM& fm) { fm.set_trainable(true); }
void FullFinetune::detach(CausalLM& fm) { fm.set_trainable(false); }

NamedTensors FullFinetune::parameters() {
  NamedTensors out;
  for (auto& p : fm_->named_parameters()) out.emplace_back(p.name, p.tensor);
  return out;
}

bool FullFinetune::is_tp_sharded(const std::string& name) const {
  if (fm_->process_group().tp_size == 1) return false;
  for (const auto& p : fm_->named_parameters())
    if (p.name == name) return p.shard.split != Split::Replicated;
  return false;
}

int64_t FullFinetune::num_trainable_parameters() const { return fm_->num_parameters(); }

void FullFinetune::save(const std::string& dir) const { fm_->save_pretrained(dir); }

void FullFinetune::load(const std::string& dir) { fm_->load_weights(dir); }

}  // namespace lopa
