// Full fine-tuning: every FM weight trainable (each rank trains its tensor-parallel shard). The trained
// weights are written back as a Hugging Face checkpoint (config.json + model.safetensors).
#pragma once

#include "lopa/method.h"

namespace lopa {

class FullFinetune : public Method {
 public:
  explicit FullFinetune(CausalLM& fm);
  std::string name() const override { return "fft"; }
  NamedTensors parameters() override;  // this rank's shards, HF names
  int64_t num_trainable_parameters() const override;
  bool server_side_adapter() const override { return true; }
  bool is_tp_sharded(const std::string& name) const override;
  void attach(CausalLM& fm) override;
  void detach(CausalLM& fm) override;
  void save(const std::string& dir) const override;  // HF checkpoint (tp gathered by the model)
  void load(const std::string& dir) override;        // this rank's shards from an HF checkpoint
  bool collective_save() const override { return true; }

 private:
  CausalLM* fm_;
};

}  // namespace lopa
