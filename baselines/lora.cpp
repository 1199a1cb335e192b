#include "baselines/lora.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "lopa/adapter_io.h"
#include "runtime/base/dropout.h"
#include "runtime/base/error.h"
#include "runtime/distributed/tensor_parallel.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

std::vector<std::string> parse_lora_targets(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    if (item == "all") item = "all-linear";
    for (char ch : item)
      LOPA_CHECK(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-', "lora-targets: '", item,
                 "' is not a module or role name");
    out.push_back(item);
  }
  LOPA_CHECK(!out.empty(), "lora-targets: empty list");
  return out;
}

std::vector<std::string> resolve_lora_modules(const std::vector<std::string>& targets, CausalLM& fm) {
  const auto modules = fm.module_names();
  std::vector<std::string> want;
  for (const auto& t : targets) {
    if (t == "all-linear") {
      want.insert(want.end(), modules.begin(), modules.end());
    } else if (t == "auto") {
      for (const auto& m : fm.architecture().default_lora_modules()) want.push_back(m);
    } else if (std::find(modules.begin(), modules.end(), t) != modules.end()) {
      want.push_back(t);
    } else if (auto role = parse_role(t)) {
      const auto& module = fm.projection(0, *role).module;  // throws naming the roles it has
      want.push_back(module.substr(module.rfind('.') + 1));
    } else {
      std::string have;
      for (const auto& m : modules) have += " " + m;
      fail("lora-targets: '", t, "' is neither a module of ", fm.config().architecture, " (", have.substr(1),
           ") nor a role (q k v o gate up down fc_in fc_out), all-linear or auto");
    }
  }
  std::vector<std::string> out;  // each once, in block order
  for (const auto& m : modules)
    if (std::find(want.begin(), want.end(), m) != want.end()) out.push_back(m);
  return out;
}

// One adapted HF module on this rank: A (r × in, or r × in_local for a row-parallel module) and B
// (this rank's rows of the module's output × r, in the order of its parts).
struct Lora::Module {
  std::string path;  // PEFT module path
  int64_t layer = 0;
  std::string name;  // module name, e.g. "c_attn"
  bool row_parallel = false;
  int64_t in = 0, out = 0, in_local = 0, shard_begin = 0;  // out: the module's rows (all its parts)
  at::Tensor A, B;
  double scaling = 1, dropout = 0;
  bool training = true;
  Communicator* tp = nullptr;
  struct Part : LinearAdapter {
    Module* m = nullptr;
    Projection* proj = nullptr;
    int64_t offset = 0, rows = 0;  // its rows in B
    at::Tensor delta(const at::Tensor& x) override { return m->delta(x, offset, rows); }
  };
  std::vector<std::shared_ptr<Part>> parts;

  // A·drop(x) of the last input: the parts of a fused module see the same x within one forward and
  // share one dropout mask and one product, as PEFT's single LoRA layer on the fused module does.
  // Released once every part has used it, so no step's activation outlives its forward.
  at::Tensor last_x, last_h;
  size_t uses = 0;

  at::Tensor delta(const at::Tensor& x, int64_t offset, int64_t rows) {
    at::Tensor y;
    if (!row_parallel) {
      if (!(last_x.defined() && last_x.is_same(x))) {
        auto xd = lopa::dropout(x.to(A.scalar_type()), dropout, training);
        // x replicated: h = A x is whole on every rank; its gradient gathers every rank's B-slice share.
        last_h = tp::copy_to_region(at::linear(xd, A), *tp);
        last_x = x;
        uses = 0;
      }
      const at::Tensor h = last_h;
      if (++uses == parts.size()) last_x = last_h = at::Tensor();
      y = at::linear(h, parts.size() == 1 ? B : B.narrow(0, offset, rows));
    } else {
      auto xd = lopa::dropout(x.to(A.scalar_type()), dropout, training);
      // x is this rank's slice: the projection's reduction sums A_local x_local over ranks; B is
      // replicated and used on a partial sum, so its gradient is all-reduced.
      y = at::linear(at::linear(xd, A), tp::copy_to_region(B, *tp));
    }
    return (y * scaling).to(x.scalar_type());
  }
  // Global module rows of this rank's B rows, in B's order.
  std::vector<int64_t> local_rows() const {
    std::vector<int64_t> r;
    for (const auto& p : parts)
      for (int64_t i = 0; i < p->proj->out_local; ++i) r.push_back(p->proj->module_rows[p->proj->shard_begin + i]);
    return r;
  }
};

Lora::Lora(LoraOptions opt, CausalLM& fm) : opt_(std::move(opt)), fm_(&fm) {
  LOPA_CHECK(opt_.rank > 0, "lora: rank must be positive");
  auto& tpc = *fm.process_group().tp;
  const double scaling = opt_.alpha / static_cast<double>(opt_.rank);
  modules_names_ = resolve_lora_modules(opt_.targets, fm);
  for (int64_t l = 0; l < fm.num_layers(); ++l) {
    for (const auto& name : modules_names_) {
      auto projections = fm.module_projections(l, name);
      // Suffix matching as PEFT: "c_proj" names GPT-2's attn.c_proj and mlp.c_proj, two modules.
      std::vector<std::vector<Projection*>> groups;
      for (auto* p : projections) {
        auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& v) { return v[0]->module == p->module; });
        if (g == groups.end()) groups.push_back({p});
        else g->push_back(p);
      }
      for (auto& parts : groups) {
        std::sort(parts.begin(), parts.end(), [](auto* a, auto* b) { return a->module_rows[0] < b->module_rows[0]; });
        const Projection& p0 = *parts[0];
        auto m = std::make_shared<Module>();
        m->path = "base_model.model." + p0.module;
        m->layer = l;
        m->name = name;
        m->row_parallel = p0.row_parallel;
        LOPA_CHECK(!m->row_parallel || parts.size() == 1, "lora: ", p0.module, " is row-parallel and fused");
        m->in = p0.in_features;
        m->in_local = p0.in_local;
        m->shard_begin = p0.shard_begin;
        m->scaling = scaling;
        m->dropout = opt_.dropout;
        m->tp = &tpc;
        int64_t local_rows = 0;
        for (auto* p : parts) {
          m->out += p->out_features;
          auto part = std::make_shared<Module::Part>();
          part->m = m.get();
          part->proj = p;
          part->offset = local_rows;
          part->rows = p->out_local;
          local_rows += p->out_local;
          m->parts.push_back(part);
        }
        // Full-size A drawn identically on every rank (same seed), then sliced: tp = 1 and tp = n agree.
        const double bound = 1.0 / std::sqrt(static_cast<double>(m->in));
        auto A_full = at::empty({opt_.rank, m->in}, at::kFloat).uniform_(-bound, bound);
        auto A = m->row_parallel ? A_full.narrow(1, m->shard_begin, m->in_local).clone() : A_full;
        auto B = at::zeros({m->row_parallel ? m->out : local_rows, opt_.rank}, at::kFloat);
        m->A = A.to(fm.device()).set_requires_grad(true);
        m->B = B.to(fm.device()).set_requires_grad(true);
        total_params_ += opt_.rank * (m->in + m->out);
        modules_.push_back(m);
      }
    }
  }
  // PEFT writes fan_in_fan_out for modules stored [in, out] (GPT-2's Conv1D).
  for (const auto& L : fm.architecture().spec().layers)
    for (const auto& p : L.projections)
      for (const auto& n : modules_names_)
        if (p.transposed && p.module.size() > n.size() && p.module.compare(p.module.size() - n.size(), n.size(), n) == 0)
          fan_in_fan_out_ = true;
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
  for (auto& m : modules_)
    for (auto& part : m->parts) {
      LOPA_CHECK(!part->proj->adapter, "lora: ", part->proj->module, " already has an adapter");
      part->proj->adapter = part;
    }
}

void Lora::detach(CausalLM& fm) {
  for (auto& m : modules_)
    for (auto& part : m->parts)
      if (part->proj->adapter.get() == part.get()) part->proj->adapter.reset();
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
      if (m->row_parallel) {
        A = pg.tp->all_gather(A.contiguous(), 1);
      } else {
        // Every rank scatters its rows into the module's rows; replicated KV heads are held by several
        // ranks, so the sum is divided by how many ranks hold each row.
        auto idx = at::tensor(m->local_rows(), at::TensorOptions().dtype(at::kLong)).to(B.device());
        auto sum = at::zeros({m->out, opt_.rank}, B.options()).index_copy_(0, idx, B);
        auto count = at::zeros({m->out, 1}, B.options()).index_fill_(0, idx, 1.0);
        pg.tp->all_reduce(sum, ReduceOp::Sum);
        pg.tp->all_reduce(count, ReduceOp::Sum);
        B = sum / count;
      }
    } else if (m->parts.size() > 1) {
      auto idx = at::tensor(m->local_rows(), at::TensorOptions().dtype(at::kLong)).to(B.device());
      B = at::zeros({m->out, opt_.rank}, B.options()).index_copy_(0, idx, B);
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
                        {"target_modules", modules_names_},
                        {"bias", "none"},
                        {"fan_in_fan_out", fan_in_fan_out_},
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
               path, ": ", m->path, " has shapes ", shape_str(A.sizes()), "/", shape_str(B.sizes()), ", expected [",
               opt_.rank, ", ", m->in, "]/[", m->out, ", ", opt_.rank, "]");
    if (m->row_parallel) A = A.narrow(1, m->shard_begin, m->in_local);
    else B = B.index_select(0, at::tensor(m->local_rows(), at::TensorOptions().dtype(at::kLong)));
    m->A.copy_(A);
    m->B.copy_(B);
  }
}

}  // namespace lopa

namespace lopa {

std::vector<Lora::Factors> Lora::factors() const {
  std::vector<Factors> out;
  for (const auto& m : modules_)
    for (const auto& part : m->parts) {
      Factors f;
      f.proj = part->proj;
      f.A = m->A.detach();
      f.B = (m->row_parallel || m->parts.size() == 1) ? m->B.detach() : m->B.detach().narrow(0, part->offset, part->rows);
      f.scaling = m->scaling;
      out.push_back(f);
    }
  return out;
}

// One projection adapted by at least one run: every run's factors (undefined when that run leaves it
// alone), and their stacked, row-gathered form for the current batch.
struct LoraBank::Slot : LinearAdapter {
  Projection* proj = nullptr;
  std::vector<at::Tensor> A, B;  // per run: r × in_local, out_local × r
  std::vector<double> scaling;
  at::Tensor A_all, Bt_all, s_all;  // (runs + 1) × rmax × in, (runs + 1) × rmax × out, runs + 1; last = none
  at::Tensor A_rows, Bt_rows, s_rows;  // gathered for the batch's rows
  int64_t batch = 0;

  void stack() {
    const int64_t n = static_cast<int64_t>(A.size());
    int64_t rmax = 1;
    for (const auto& a : A)
      if (a.defined()) rmax = std::max<int64_t>(rmax, a.size(0));
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(proj->weight.device());
    A_all = at::zeros({n + 1, rmax, proj->in_local}, opts);
    Bt_all = at::zeros({n + 1, rmax, proj->out_local}, opts);
    s_all = at::zeros({n + 1}, opts);
    for (int64_t i = 0; i < n; ++i) {
      if (!A[i].defined()) continue;
      const int64_t r = A[i].size(0);
      A_all[i].narrow(0, 0, r).copy_(A[i]);
      Bt_all[i].narrow(0, 0, r).copy_(B[i].t());
      s_all[i].fill_(scaling[i]);
    }
  }
  void gather(const at::Tensor& idx) {
    A_rows = A_all.index_select(0, idx).transpose(1, 2).contiguous();  // B × in × rmax
    Bt_rows = Bt_all.index_select(0, idx);                              // B × rmax × out
    s_rows = s_all.index_select(0, idx).view({-1, 1, 1});
    batch = idx.size(0);
  }
  at::Tensor delta(const at::Tensor& x) override {
    LOPA_CHECK(x.dim() == 3 && x.size(0) == batch, "LoraBank: input ", shape_str(x.sizes()), " for a batch of ", batch,
               " rows (set_rows before the forward)");
    auto h = at::bmm(x.to(at::kFloat), A_rows);                  // B × T × rmax
    return (at::bmm(h, Bt_rows) * s_rows).to(x.scalar_type());  // B × T × out
  }
};

LoraBank::LoraBank(CausalLM& fm) : fm_(&fm) {}

LoraBank::~LoraBank() { clear(); }

int64_t LoraBank::add(const Lora& lora) {
  clear();
  const int64_t id = num_runs_++;
  for (auto& s : slots_) {
    s->A.emplace_back();
    s->B.emplace_back();
    s->scaling.push_back(0);
  }
  for (const auto& f : lora.factors()) {
    auto it = std::find_if(slots_.begin(), slots_.end(), [&](const auto& s) { return s->proj == f.proj; });
    if (it == slots_.end()) {
      auto s = std::make_shared<Slot>();
      s->proj = f.proj;
      s->A.resize(num_runs_);
      s->B.resize(num_runs_);
      s->scaling.resize(num_runs_, 0);
      slots_.push_back(s);
      it = slots_.end() - 1;
    }
    (*it)->A[id] = f.A;
    (*it)->B[id] = f.B;
    (*it)->scaling[id] = f.scaling;
  }
  for (auto& s : slots_) s->stack();
  rows_.clear();
  return id;
}

void LoraBank::set_rows(const std::vector<int64_t>& rows) {
  for (auto r : rows) LOPA_CHECK(r >= -1 && r < num_runs_, "LoraBank: run ", r, " not registered (", num_runs_, " runs)");
  const bool any = std::any_of(rows.begin(), rows.end(), [](int64_t r) { return r >= 0; });
  if (!any) {
    clear();
    rows_ = rows;
    return;
  }
  if (installed_ && rows == rows_) return;
  std::vector<int64_t> idx(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) idx[i] = rows[i] >= 0 ? rows[i] : num_runs_;  // the zero slot
  for (auto& s : slots_) {
    s->gather(at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(s->A_all.device()));
    if (!installed_) {
      LOPA_CHECK(!s->proj->adapter, "LoraBank: ", s->proj->module, " already has an adapter");
      s->proj->adapter = s;
    }
  }
  installed_ = true;
  rows_ = rows;
}

void LoraBank::clear() {
  if (!installed_) return;
  for (auto& s : slots_)
    if (s->proj->adapter.get() == s.get()) s->proj->adapter.reset();
  installed_ = false;
}

}  // namespace lopa
