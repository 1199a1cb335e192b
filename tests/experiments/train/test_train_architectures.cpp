// `lopa train` on the decoder families beyond Llama (random-init GPT-2, CodeGen and Phi from the
// independent references, with stories260K's tokenizer): every method trains with a falling loss, and
// tensor parallelism over 2 ranks gives the same losses and the same saved adapter as one rank —
// including LoRA on fused modules (GPT-2's c_attn, CodeGen's qkv_proj in its mp_num = 4 layout) and
// full fine-tuning, whose saved checkpoint re-fuses and transposes the modules as transformers stores them.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "runtime/io/safetensors.h"
#include "tests/support/family_models.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using lopa::test::capture;
using lopa::test::family_model;

namespace {

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_arch_train_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d.string();
}

std::vector<double> losses(const std::string& run_dir) {
  int rc = 0;
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                     "[print(repr(float(x))) for x in f['train/loss'][:]]\" " + run_dir + "/metrics.h5",
                     &rc);
  std::vector<double> v;
  std::istringstream in(out);
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

std::string train_cmd(const std::string& family, const std::string& method, const std::string& out,
                      const std::string& extra) {
  return std::string(LOPA_BIN) + " train --model " + family_model(family) + " --task story-names --method " + method +
         " --num-virtual-tokens 4 --rank 2 --batch-size 8 --max-length 64 --max-train-examples 64 "
         "--max-eval-examples 8 --eval-batch-size 8 --device cpu --out " + out + " " + extra + " > " + out +
         ".log 2>&1";
}

int status_of(const std::string& cmd) {
  int rc = 0;
  capture(cmd, &rc);
  return rc;
}

std::string lr_of(const std::string& method) { return method == "fft" ? "0.003" : method == "lora" ? "0.01" : "0.03"; }

}  // namespace

class TrainEveryArchitecture : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(TrainEveryArchitecture, LossFalls) {
  const auto [family, method] = GetParam();
  const auto out = tmpdir(family + "_" + method);
  ASSERT_EQ(status_of(train_cmd(family, method, out, "--max-steps 16 --eval-every 16 --lr " + lr_of(method))), 0)
      << family << " " << method << ": see " << out << ".log";
  const auto l = losses(out);
  ASSERT_EQ(l.size(), 16u);
  const double first = (l[0] + l[1] + l[2] + l[3]) / 4, last = (l[12] + l[13] + l[14] + l[15]) / 4;
  EXPECT_LT(last, first) << family << " " << method << ": training loss did not fall";
  fs::remove_all(out);
  fs::remove(out + ".log");
}

INSTANTIATE_TEST_SUITE_P(Families, TrainEveryArchitecture,
                         ::testing::Combine(::testing::Values("gpt2", "codegen", "phi"),
                                            ::testing::Values("lopa", "pt", "idpg", "lora", "prefix", "fft")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

// tp = 2 against tp = 1: losses step by step, then every tensor of the saved adapter.
void expect_tp2_matches_tp1(const std::string& family, const std::string& method, int steps) {
  const auto one = tmpdir("tp1_" + family + method), two = tmpdir("tp2_" + family + method);
  const std::string extra = "--max-steps " + std::to_string(steps) + " --lr " + lr_of(method) +
                            " --lora-dropout 0 --prompt-dropout 0";
  ASSERT_EQ(status_of(train_cmd(family, method, one, extra)), 0) << one << ".log";
  ASSERT_EQ(status_of(std::string(LOPA_MPIRUN_CMD) + " -np 2 " + train_cmd(family, method, two, extra + " --tp 2")), 0)
      << two << ".log";
  const auto a = losses(one), b = losses(two);
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps));
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(a[i])) << family << " " << method << " step " << i + 1;
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(one) / "adapter")) {
    if (e.path().extension() != ".safetensors") continue;
    ++files;
    auto f1 = lopa::SafetensorsFile::open(e.path().string());
    auto f2 = lopa::SafetensorsFile::open((fs::path(two) / "adapter" / e.path().filename()).string());
    EXPECT_EQ(f1.names(), f2.names());
    for (const auto& name : f1.names()) {
      auto x = f1.tensor(name, at::kFloat), y = f2.tensor(name, at::kFloat);
      ASSERT_EQ(x.sizes(), y.sizes()) << name;
      EXPECT_LT((x - y).abs().max().item<float>(), 1e-3) << family << " " << method << " " << name;
    }
  }
  EXPECT_GE(files, 1);
  fs::remove_all(one);
  fs::remove_all(two);
}

TEST(TrainArchitectures, Gpt2LoraOnFusedCAttnTensorParallel) { expect_tp2_matches_tp1("gpt2", "lora", 6); }
TEST(TrainArchitectures, CodeGenLoraOnFusedQkvTensorParallel) { expect_tp2_matches_tp1("codegen", "lora", 6); }
TEST(TrainArchitectures, CodeGenFullFinetuneTensorParallel) { expect_tp2_matches_tp1("codegen", "fft", 4); }
TEST(TrainArchitectures, PhiLopaTensorParallel) { expect_tp2_matches_tp1("phi", "lopa", 6); }
TEST(TrainArchitectures, Gpt2PrefixTensorParallel) { expect_tp2_matches_tp1("gpt2", "prefix", 6); }

TEST(TrainArchitectures, LoraSavesPeftModulesOfTheFamily) {
  // PEFT's layout: one A/B per fused module, B over the module's whole output; fan_in_fan_out for Conv1D.
  const auto out = tmpdir("peft_gpt2");
  ASSERT_EQ(status_of(train_cmd("gpt2", "lora", out, "--max-steps 1 --lr 0.01")), 0) << out << ".log";
  auto f = lopa::SafetensorsFile::open(out + "/adapter/adapter_model.safetensors");
  EXPECT_EQ(f.info("base_model.model.transformer.h.1.attn.c_attn.lora_A.weight").shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(f.info("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight").shape, (std::vector<int64_t>{192, 2}));
  std::ifstream in(out + "/adapter/adapter_config.json");
  auto cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg["target_modules"], nlohmann::json::array({"c_attn"}));
  EXPECT_EQ(cfg["fan_in_fan_out"], true);
  fs::remove_all(out);
}
