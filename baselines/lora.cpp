#include "baselines/lora.h"

#include <cmath>
#include <map>
#include <sstream>

#include "lopa/adapter_io.h"
#include "runtime/error.h"
#include "runtime/llama.h"
#include "runtime/tensor_parallel.h"

namespace lopa {

namespace {
const std::vector<std::string> kAllLinear = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

std::string peft_module_path(int64_t layer, const std::string& proj) {
  const bool attn = proj == "q_proj" || proj == "k_proj" || proj == "v_proj" || proj == "o_proj";
  return str("base_model.model.model.layers.", layer, attn ? ".self_attn." : ".mlp.", proj);
}
}  // namespace

std::vector<std::string> parse_lora_targets(const std::string& s) {
  if (s == "all-linear" || s == "all") return kAllLinear;
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    if (item.size() <= 4 && item.find("_proj") == std::string::npos) item += "_proj";  // q → q_proj, gate → gate_proj
    bool known = false;
    for (const auto& k : kAllLinear) known |= (k == item);
    LOPA_CHECK(known, "lora-targets: unknown projection '", item, "' (expected q,k,v,o,gate,up,down or all-linear)");
    out.push_back(item);
  }
  LOPA_CHECK(!out.empty(), "lora-targets: empty list");
  return out;
}

// One adapted projection: A (r × in_local) and B (out_local × r) for this rank.
struct Lora::Module : LinearAdapter {
  std::string path;  // PEFT module path
  int64_t layer = 0;
  std::string proj;
  bool row_parallel = false;  // Cols split: A holds this rank's input columns
  int64_t in = 0, out = 0, in_local = 0, out_local = 0, shard_begin = 0;
  at::Tensor A, B;
  double scaling = 1, dropout = 0;
  bool training = true;
  Communicator* tp = nullptr;

  at::Tensor delta(const at::Tensor& x) override {
    auto xd = at::dropout(x.to(A.scalar_type()), dropout, training && dropout > 0);
    at::Tensor y;
    if (!row_parallel) {
      // x replicated: h = A x is whole on every rank; its gradient gathers every rank's B-slice share.
      auto h = tp::copy_to_region(at::linear(xd, A), *tp);
      y = at::linear(h, B);
    } else {
      // x is this rank's slice: the projection's reduction sums A_local x_local over ranks; B is
      // replicated and used on a partial sum, so its gradient is all-reduced.
      y = at::linear(at::linear(xd, A), tp::copy_to_region(B, *tp));
    }
    return (y * scaling).to(x.scalar_type());
  }
};

Lora::Lora(LoraOptions opt, CausalLM& fm) : opt_(std::move(opt)), fm_(&fm) {
  LOPA_CHECK(opt_.rank > 0, "lora: rank must be positive");
  auto& tpc = *fm.process_group().tp;
  const double scaling = opt_.alpha / static_cast<double>(opt_.rank);
  for (int64_t l = 0; l < fm.num_layers(); ++l) {
    for (const auto& name : opt_.targets) {
      const auto& p = fm.projection(l, name);
      auto m = std::make_shared<Module>();
      m->path = peft_module_path(l, name);
      m->layer = l;
      m->proj = name;
      m->row_parallel = p.split == Split::Cols;
      m->in = p.in_features;
      m->out = p.out_features;
      m->in_local = p.in_local;
      m->out_local = p.out_local;
      m->shard_begin = p.shard_begin;
      m->scaling = scaling;
      m->dropout = opt_.dropout;
      m->tp = &tpc;
      // Full-size A drawn identically on every rank (same seed), then sliced: tp = 1 and tp = n agree.
      const double bound = 1.0 / std::sqrt(static_cast<double>(m->in));
      auto A_full = at::empty({opt_.rank, m->in}, at::kFloat).uniform_(-bound, bound);
      auto A = m->row_parallel ? A_full.narrow(1, m->shard_begin, m->in_local).clone() : A_full;
      auto B = at::zeros({m->row_parallel ? m->out : m->out_local, opt_.rank}, at::kFloat);
      m->A = A.to(fm.device()).set_requires_grad(true);
      m->B = B.to(fm.device()).set_requires_grad(true);
      total_params_ += opt_.rank * (m->in + m->out);
      modules_.push_back(m);
    }
  }
}

Lora::~Lora() = default;

int64_t Lora::formula(int64_t r, const std::vector<std::pair<int64_t, int64_t>>& io) {
  int64_t n = 0;
  for (const auto& [in, out] : io) n += r * (in + out);
  return n;
}

NamedTensors Lora::parameters() {
  NamedTensors out;
  for (auto& m : modules_) {
    out.emplace_back(m->path + ".lora_A.weight", m->A);
    out.emplace_back(m->path + ".lora_B.weight", m->B);
  }
  return out;
}

void Lora::attach(CausalLM& fm) {
  for (auto& m : modules_) {
    auto& p = fm.projection(m->layer, m->proj);
    LOPA_CHECK(!p.adapter, "lora: ", p.name, " already has an adapter");
    p.adapter = m;
  }
}

void Lora::detach(CausalLM& fm) {
  for (auto& m : modules_) {
    auto& p = fm.projection(m->layer, m->proj);
    if (p.adapter.get() == m.get()) p.adapter.reset();
  }
}

bool Lora::is_tp_sharded(const std::string& name) const {
  if (fm_->process_group().tp_size == 1) return false;
  for (const auto& m : modules_) {
    if (name == m->path + ".lora_A.weight") return m->row_parallel;
    if (name == m->path + ".lora_B.weight") return !m->row_parallel;
  }
  return false;
}

void Lora::set_training(bool on) {
  Method::set_training(on);
  for (auto& m : modules_) m->training = on;
}

void Lora::save(const std::string& dir) const {
  const auto& pg = fm_->process_group();
  NamedTensors full;
  for (const auto& m : modules_) {
    auto A = m->A.detach(), B = m->B.detach();
    if (pg.tp_size > 1) {
      if (m->row_parallel) A = pg.tp->all_gather(A.contiguous(), 1);
      else B = pg.tp->all_gather(B.contiguous(), 0);
    }
    full.emplace_back(m->path + ".lora_A.weight", A);
    full.emplace_back(m->path + ".lora_B.weight", B);
  }
  if (pg.tp_rank != 0) return;
  nlohmann::json cfg = {{"peft_type", "LORA"},
                        {"task_type", "CAUSAL_LM"},
                        {"r", opt_.rank},
                        {"lora_alpha", opt_.alpha},
                        {"lora_dropout", opt_.dropout},
                        {"target_modules", opt_.targets},
                        {"bias", "none"},
                        {"fan_in_fan_out", false},
                        {"init_lora_weights", true},
                        {"modules_to_save", nullptr},
                        {"base_model_name_or_path", opt_.base_model},
                        {"inference_mode", true}};
  write_adapter(dir, full, cfg, "adapter_config.json", "adapter_model.safetensors");
}

void Lora::load(const std::string& dir) {
  auto cfg = read_adapter_config(dir, "adapter_config.json");
  LOPA_CHECK(cfg.value("peft_type", std::string()) == "LORA", dir, "/adapter_config.json: peft_type is not LORA");
  LOPA_CHECK(cfg.value("r", int64_t(-1)) == opt_.rank, dir, "/adapter_config.json: r = ", cfg.value("r", int64_t(-1)),
             " but this run has rank ", opt_.rank);
  const auto path = dir + "/adapter_model.safetensors";
  auto file = SafetensorsFile::open(path);
  at::NoGradGuard g;
  for (auto& m : modules_) {
    // PEFT also writes names with an adapter name (….lora_A.default.weight) in memory; files use the plain form.
    const auto a_name = m->path + ".lora_A.weight", b_name = m->path + ".lora_B.weight";
    LOPA_CHECK(file.contains(a_name) && file.contains(b_name), path, ": missing ", a_name, " or its lora_B");
    auto A = file.tensor(a_name, at::kFloat), B = file.tensor(b_name, at::kFloat);
    LOPA_CHECK(A.dim() == 2 && A.size(0) == opt_.rank && A.size(1) == m->in && B.dim() == 2 && B.size(0) == m->out &&
                   B.size(1) == opt_.rank,
               path, ": ", m->path, " has shapes ", shape_str(A.sizes()), "/", shape_str(B.sizes()), ", expected [", opt_.rank, ", ", m->in,
               "]/[", m->out, ", ", opt_.rank, "]");
    if (m->row_parallel) A = A.narrow(1, m->shard_begin, m->in_local);
    else B = B.narrow(0, m->shard_begin, m->out_local);
    m->A.copy_(A);
    m->B.copy_(B);
  }
}

}  // namespace lopa
