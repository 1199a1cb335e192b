#include "experiments/train/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <mutex>

#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/process_group.h"

namespace lopa {

namespace fs = std::filesystem;

namespace {
std::string rank_file(const std::string& dir, const ProcessGroup& pg) { return str(dir, "/rank", pg.world_rank, ".pt"); }
const char* kMarker = "COMPLETE";
}  // namespace

bool checkpoint_exists(const std::string& dir) { return fs::exists(fs::path(dir) / kMarker); }

void save_checkpoint(const std::string& dir, const ProcessGroup& pg, const NamedTensors& params,
                     torch::optim::Optimizer& opt, const TrainState& state) {
  if (pg.is_root()) {
    fs::create_directories(dir);
    fs::remove(fs::path(dir) / kMarker);
  }
  pg.world->barrier();
  torch::serialize::OutputArchive ar;
  // Archive keys may not contain '.': parameters are stored by position (the order is fixed by the method).
  for (size_t i = 0; i < params.size(); ++i) ar.write(str("param_", i), params[i].second.detach().cpu());
  torch::serialize::OutputArchive opt_ar;
  opt.save(opt_ar);
  ar.write("optimizer", opt_ar);
  ar.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
  // On a GPU, dropout draws from the device's generator: without its state a resumed run would repeat
  // the masks of step 0 instead of continuing the uninterrupted run's.
  if (!pg.device.is_cpu()) ar.write("rng_device", at::globalContext().defaultGenerator(pg.device).get_state());
  ar.write("state_step", at::tensor(state.step));
  ar.write("state_epoch", at::tensor(state.epoch));
  ar.write("state_batch_in_epoch", at::tensor(state.batch_in_epoch));
  ar.write("state_best_metric", at::tensor(state.best_metric, at::kDouble));
  ar.write("state_best_step", at::tensor(state.best_step));
  const auto file = rank_file(dir, pg);
  std::string error;
  try {
    // The archive streams into an AtomicFile, which keeps write errors instead of throwing them: an
    // exception out of LibTorch's writer callback escapes the writer's destructor and aborts the
    // process (SIGABRT after a full disk, issue 18). A failure removes the temporary.
    AtomicFile out(file);
    ar.save_to([&out](const void* data, size_t n) -> size_t {
      out.write(data, n);
      return n;
    });
    out.commit();
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Every rank learns whether all wrote their file, so all fail together and rank 0 can record it.
  agree_on_failure(pg, error, "checkpoint " + dir);
  if (pg.is_root()) {
    nlohmann::json j = {{"step", state.step},           {"epoch", state.epoch},
                        {"batch_in_epoch", state.batch_in_epoch}, {"best_metric", state.best_metric},
                        {"best_step", state.best_step}, {"world_size", pg.world_size}, {"tp", pg.tp_size}};
    write_file_atomic(dir + "/state.json", j.dump(2) + "\n");
    write_file_atomic(dir + "/" + kMarker, std::to_string(state.step) + "\n");  // last: the checkpoint is complete
  }
  pg.world->barrier();
}

TrainState load_checkpoint(const std::string& dir, const ProcessGroup& pg, const NamedTensors& params,
                           torch::optim::Optimizer& opt) {
  const auto file = rank_file(dir, pg);
  LOPA_CHECK(fs::exists(file), file, ": missing (the checkpoint was written by a run with another world size?)");
  auto saved = read_checkpoint_state(dir);
  LOPA_CHECK(saved.step >= 0, dir, "/state.json: bad step");
  torch::serialize::InputArchive ar;
  ar.load_from(file);
  {
    at::NoGradGuard g;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& [name, p] = params[i];
      at::Tensor t;
      LOPA_CHECK(ar.try_read(str("param_", i), t), file, ": no parameter '", name, "' (another method or config?)");
      LOPA_CHECK(t.sizes() == p.sizes(), file, ": parameter '", name, "' has shape ", shape_str(t.sizes()), ", expected ",
                 shape_str(p.sizes()));
      p.copy_(t);
    }
  }
  torch::serialize::InputArchive opt_ar;
  ar.read("optimizer", opt_ar);
  opt.load(opt_ar);
  at::Tensor rng, step, epoch, bie, best, best_step;
  ar.read("rng_cpu", rng);
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle sharing the default generator
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  if (!pg.device.is_cpu()) {
    at::Tensor device_rng;
    LOPA_CHECK(ar.try_read("rng_device", device_rng), file, ": no state of the ", pg.device.str(),
               " random generator (written on another device?)");
    at::Generator gen = at::globalContext().defaultGenerator(pg.device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(device_rng);
  }
  ar.read("state_step", step);
  ar.read("state_epoch", epoch);
  ar.read("state_batch_in_epoch", bie);
  ar.read("state_best_metric", best);
  ar.read("state_best_step", best_step);
  TrainState s;
  s.step = step.item<int64_t>();
  s.epoch = epoch.item<int64_t>();
  s.batch_in_epoch = bie.item<int64_t>();
  s.best_metric = best.item<double>();
  s.best_step = best_step.item<int64_t>();
  return s;
}

TrainState read_checkpoint_state(const std::string& dir) {
  const auto path = dir + "/state.json";
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open");
  nlohmann::json j;
  try {
    j = parse_json(in);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  TrainState s;
  s.step = j.value("step", int64_t(-1));
  s.epoch = j.value("epoch", int64_t(0));
  s.batch_in_epoch = j.value("batch_in_epoch", int64_t(0));
  s.best_metric = j.value("best_metric", -1.0);
  s.best_step = j.value("best_step", int64_t(-1));
  return s;
}

}  // namespace lopa
