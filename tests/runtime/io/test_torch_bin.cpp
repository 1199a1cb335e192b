// torch.save checkpoints (pytorch_model.bin, sharded .bin index) against the same tensors written by
// PyTorch as safetensors (tests/runtime/io/write_torch_bin.py), and their errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "model_test_util.h"
#include "runtime/base/error.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/torch_bin.h"

using namespace lopa;
using namespace lopa::testing;
namespace fs = std::filesystem;

namespace {
// One run of the fixture writer per test program (~2 s of Python start-up), removed at exit.
struct FixtureDir {
  std::string path;
  ~FixtureDir() { fs::remove_all(path); }
};
const std::string& fixtures() {
  static const FixtureDir dir{[] {
    const auto d = temp_dir("torch_bin");
    const auto r =
        run("/usr/bin/python3 " + std::string(LOPA_SOURCE_DIR) + "/tests/runtime/io/write_torch_bin.py " + d);
    EXPECT_EQ(r.status, 0) << r.err;
    return d;
  }()};
  return dir.path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Every tensor of `ck` equals the reference bit for bit, in its stored dtype and shape, and after
// conversion; 2-D ones also as row and column slices.
void expect_matches_reference(const Checkpoint& ck, const SafetensorsFile& ref) {
  auto ref_names = ref.names();
  std::sort(ref_names.begin(), ref_names.end());
  ASSERT_EQ(ck.names(), ref_names);
  int64_t n = 0;
  for (const auto& name : ref_names) {
    SCOPED_TRACE(name);
    const auto want = ref.tensor(name);
    n += want.numel();
    EXPECT_EQ(ck.info(name).dtype, want.scalar_type());
    EXPECT_EQ(ck.info(name).dtype_code, ref.info(name).dtype_code);
    EXPECT_EQ(ck.info(name).shape, want.sizes().vec());
    const auto got = ck.tensor(name);
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_EQ(got.scalar_type(), want.scalar_type());
    EXPECT_TRUE(got.equal(want));
    if (at::isFloatingType(want.scalar_type())) {
      EXPECT_TRUE(ck.tensor(name, at::kFloat).equal(want.to(at::kFloat)));
      EXPECT_TRUE(ck.tensor(name, at::kBFloat16).equal(want.to(at::kBFloat16)));
    }
    if (want.dim() == 2 && want.size(0) >= 3 && want.size(1) >= 3) {
      EXPECT_TRUE(ck.rows(name, 1, 3).equal(want.narrow(0, 1, 2)));
      EXPECT_TRUE(ck.cols(name, 1, 3).equal(want.narrow(1, 1, 2)));
      EXPECT_TRUE(ck.cols(name, 2, 3, at::kFloat).equal(want.narrow(1, 2, 1).to(at::kFloat)));
      EXPECT_TRUE(ck.rows(name, 0, 0).sizes().equals({0, want.size(1)}));
    }
  }
  EXPECT_EQ(ck.num_elements(), n);
}
}  // namespace

TEST(TorchBin, StateDictMatchesPyTorchsSafetensors) {
  const auto dir = fixtures() + "/single";
  const auto ck = Checkpoint::open(dir);
  EXPECT_EQ(ck.weights_file(), "pytorch_model.bin");
  EXPECT_EQ(ck.file_of("proj.weight"), dir + "/pytorch_model.bin");
  const auto ref = SafetensorsFile::open(dir + "/reference.safetensors");
  expect_matches_reference(ck, ref);

  // The file's dtypes: fp32, fp16, bf16 and the int64 buffer, as Python wrote them.
  EXPECT_EQ(ck.info("proj.weight").dtype_code, "F16");
  EXPECT_EQ(ck.info("norm.bias").dtype_code, "BF16");
  EXPECT_EQ(ck.info("position_ids").dtype, at::kLong);
  EXPECT_TRUE(ck.tensor("position_ids").equal(at::arange(12, at::kLong).view({1, 12})));
  // Tied weights are one storage in the file, and reads of either are views of that one mapping.
  EXPECT_EQ(ck.tensor("embed.weight").data_ptr(), ck.tensor("head.weight").data_ptr());
  EXPECT_EQ(ck.info("embed.weight").begin, ck.info("head.weight").begin);
  // proj_rows is rows 2..4 of proj.weight's storage: 12 fp16 elements in.
  EXPECT_EQ(ck.info("proj_rows").begin, ck.info("proj.weight").begin + 12 * 2);
  EXPECT_EQ(ck.info("proj_rows").end - ck.info("proj_rows").begin, 3u * 6 * 2);
  EXPECT_TRUE(ck.tensor("proj_rows").equal(ck.rows("proj.weight", 2, 5)));
}

TEST(TorchBin, ShardedIndexMatchesPyTorchsSafetensors) {
  const auto dir = fixtures() + "/sharded";
  const auto ck = Checkpoint::open(dir);
  EXPECT_EQ(ck.weights_file(), "pytorch_model.bin.index.json");
  EXPECT_NE(ck.file_of("embed.weight"), ck.file_of("proj.weight"));  // alternate names, alternate shards
  EXPECT_NE(ck.file_of("proj.weight").find("-of-00002.bin"), std::string::npos);
  expect_matches_reference(ck, SafetensorsFile::open(fixtures() + "/single/reference.safetensors"));
}

TEST(TorchBin, RezippedWithCompressionMatches) {
  // Compressed, unaligned records cannot be mapped: they are inflated by LibTorch's reader instead.
  expect_matches_reference(Checkpoint::open(fixtures() + "/rezipped"),
                           SafetensorsFile::open(fixtures() + "/single/reference.safetensors"));
}

TEST(TorchBin, SafetensorsWinsOverBin) {
  const auto dir = temp_dir("both");
  fs::copy_file(fixtures() + "/single/pytorch_model.bin", dir + "/pytorch_model.bin");
  const at::Tensor only = at::arange(4, at::kFloat);
  save_safetensors(dir + "/model.safetensors", {{"only", only}});
  const auto ck = Checkpoint::open(dir);
  EXPECT_EQ(ck.weights_file(), "model.safetensors");
  EXPECT_EQ(ck.names(), std::vector<std::string>{"only"});
  fs::remove_all(dir);
}

TEST(TorchBin, DictsPickledWithSetitem) {
  // Python pickles dict items in batches of 1000, a batch of one with SETITEM, which LibTorch's
  // unpickler lacks: one-tensor dicts of both kinds and a 1001-tensor state dict still load.
  for (const char* file : {"one_ordered.bin", "one_plain.bin"}) {
    SCOPED_TRACE(file);
    const auto f = TorchBinFile::open(fixtures() + "/" + file);
    EXPECT_EQ(f.names(), std::vector<std::string>{"w"});
    EXPECT_TRUE(f.tensor("w").equal(at::tensor({1.5f, -2.0f, 3.25f})));
  }
  const auto f = TorchBinFile::open(fixtures() + "/many.bin");
  const auto names = f.names();
  ASSERT_EQ(names.size(), 1001u);
  for (int i = 0; i < 1001; ++i) {
    ASSERT_EQ(names[i], "t" + std::to_string(i));
    ASSERT_TRUE(f.tensor(names[i]).equal(at::full({2}, static_cast<float>(i)))) << names[i];
  }
}

TEST(TorchBin, Errors) {
  const auto dir = temp_dir("bin_errors");
  const auto bin = dir + "/pytorch_model.bin";

  // A truncated download: the zip directory at the end is gone.
  fs::copy_file(fixtures() + "/single/pytorch_model.bin", bin);
  fs::resize_file(bin, fs::file_size(bin) / 2);
  auto msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find(bin + ": cannot read this torch zip archive (truncated or damaged?)"), std::string::npos) << msg;
  fs::resize_file(bin, 0);
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find(bin + ": empty file"), std::string::npos) << msg;

  // Random bytes, and the legacy (pre-1.6) pickle format.
  {
    std::mt19937 rng(7);
    std::ofstream out(bin, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(rng() & 0xff));
  }
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find(bin + ": neither a torch zip archive (torch.save) nor safetensors"), std::string::npos) << msg;
  fs::copy_file(fixtures() + "/legacy.bin", bin, fs::copy_options::overwrite_existing);
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find(bin + ": legacy torch.save format"), std::string::npos) << msg;
  EXPECT_NE(msg.find("re-save it"), std::string::npos) << msg;

  // A pickle of something other than {name: tensor}.
  msg = error_of([&] { TorchBinFile::open(fixtures() + "/not_tensors.bin"); });
  EXPECT_NE(msg.find("not_tensors.bin: entry 'step' is a Int, not a tensor"), std::string::npos) << msg;
  msg = error_of([&] { TorchBinFile::open(fixtures() + "/parameters.bin"); });
  EXPECT_NE(msg.find("parameters.bin: cannot unpickle its state dict"), std::string::npos) << msg;
  EXPECT_NE(msg.find("torch._utils._rebuild_parameter"), std::string::npos) << msg;

  // Sizes that reach outside the storage, and a storage larger than its record: refused before any
  // read can leave the file's mapping.
  msg = error_of([&] { TorchBinFile::open(fixtures() + "/short_storage.bin"); });
  EXPECT_NE(msg.find("short_storage.bin: tensor 'a' of shape [12] at offset 0 with strides [1] reaches past its "
                     "storage of 2 elements"), std::string::npos) << msg;
  msg = error_of([&] { TorchBinFile::open(fixtures() + "/long_storage.bin"); });
  EXPECT_NE(msg.find("long_storage.bin: tensor 'a': its storage of 1020 bytes runs past its record"), std::string::npos)
      << msg;

  // A sharded index naming a missing shard, and one mapping a tensor to a shard that lacks it.
  const auto sharded = temp_dir("bin_index_errors");
  for (const auto& e : fs::directory_iterator(fixtures() + "/sharded"))
    fs::copy_file(e.path(), sharded + "/" + e.path().filename().string());
  auto index = nlohmann::json::parse(read_text(sharded + "/pytorch_model.bin.index.json"));
  const std::string first = "pytorch_model-00001-of-00002.bin", second = "pytorch_model-00002-of-00002.bin";
  ASSERT_EQ(index["weight_map"]["window"], first);
  index["weight_map"]["window"] = second;
  write_text(sharded + "/pytorch_model.bin.index.json", index.dump());
  msg = error_of([&] { Checkpoint::open(sharded); });
  EXPECT_NE(msg.find("pytorch_model.bin.index.json: tensor 'window' is not in shard '" + second + "'"),
            std::string::npos) << msg;
  fs::remove(sharded + "/" + second);
  msg = error_of([&] { Checkpoint::open(sharded); });
  EXPECT_NE(msg.find("pytorch_model.bin.index.json: shard '" + second + "' named for"), std::string::npos) << msg;

  // A name the checkpoint lacks names the weights file.
  const auto ck = Checkpoint::open(fixtures() + "/single");
  msg = error_of([&] { ck.tensor("lm_head.weight"); });
  EXPECT_NE(msg.find("tensor 'lm_head.weight' not found in pytorch_model.bin"), std::string::npos) << msg;
  msg = error_of([&] { ck.cols("proj.bias", 0, 1); });
  EXPECT_NE(msg.find("pytorch_model.bin: tensor 'proj.bias' is not 2-D"), std::string::npos) << msg;
  msg = error_of([&] { ck.rows("proj.weight", 3, 9); });
  EXPECT_NE(msg.find("rows [3, 9) out of range for tensor 'proj.weight' with 8 rows"), std::string::npos) << msg;
  fs::remove_all(dir);
  fs::remove_all(sharded);
}
