#include "baselines/full_finetune.h"

#include "runtime/checkpoint.h"
#include "runtime/error.h"
#include "runtime/llama.h"

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

void FullFinetune::load(const std::string& dir) {
  auto ckpt = Checkpoint::open(dir);
  at::NoGradGuard g;
  for (auto& p : fm_->named_parameters()) {
    LOPA_CHECK(ckpt.contains(p.name), dir, ": tensor '", p.name, "' not found");
    at::Tensor src;
    const auto& s = p.shard;
    if (s.split == Split::Replicated) {
      src = ckpt.tensor(p.name, p.tensor.scalar_type());
    } else {
      const int64_t dim = s.split == Split::Rows ? 0 : 1;
      const int64_t global = s.global_shape[dim];
      const int64_t end = std::min(s.end, global);
      src = dim == 0 ? ckpt.rows(p.name, s.begin, end, p.tensor.scalar_type())
                     : ckpt.cols(p.name, s.begin, end, p.tensor.scalar_type());
      if (end - s.begin < p.tensor.size(dim)) {  // padded vocabulary rows stay zero
        p.tensor.narrow(dim, 0, end - s.begin).copy_(src);
        continue;
      }
    }
    p.tensor.copy_(src.to(p.tensor.device()));
  }
}

}  // namespace lopa
