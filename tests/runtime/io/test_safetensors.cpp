// safetensors reader/writer: round trips, zero-copy views, slices, and every malformed-file error.
#include <gtest/gtest.h>

#include <cstring>

#include "model_test_util.h"
#include "runtime/base/error.h"
#include "runtime/io/safetensors.h"

using namespace lopa;
using namespace lopa::testing;

namespace {

// A file from a raw header string and data bytes (the header length field is computed).
std::string raw_file(const std::string& dir, const std::string& name, const std::string& header, size_t data_bytes,
                     int64_t header_len_override = -1) {
  const auto path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out << header;
  out << std::string(data_bytes, '\0');
  return path;
}

// The one-line error that opening `path` must throw; checks it names the file.
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  const auto dir = temp_dir("st");
  auto f32 = at::arange(12, at::kFloat).view({3, 4}) * 0.5;
  NamedTensors ts = {{"f32", f32},
                     {"bf16", f32.to(at::kBFloat16)},
                     {"f16", f32.to(at::kHalf)},
                     {"i64", at::arange(5, at::kLong) - 2},
                     {"i32", at::arange(4, at::kInt)},
                     {"bool", at::tensor({1, 0, 1}, at::kLong).to(at::kBool)},
                     {"empty", at::zeros({0, 3}, at::kFloat)}};
  save_safetensors(dir + "/a.safetensors", ts, {{"format", "pt"}, {"note", "x"}});
  auto f = SafetensorsFile::open(dir + "/a.safetensors");
  EXPECT_EQ(f.metadata().at("note"), "x");
  EXPECT_EQ(f.names().size(), ts.size());
  for (const auto& [name, t] : ts) {
    auto got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(got.equal(t)) << name;
  }
  EXPECT_EQ(f.info("bf16").dtype_code, "BF16");
  // Conversion to the run dtype.
  EXPECT_TRUE(f.tensor("bf16", at::kFloat).equal(f32));  // halves and integers are exact in bf16
  EXPECT_EQ(f.tensor("i32", at::kLong).scalar_type(), at::kLong);
  // Header padded to a multiple of 8 bytes.
  const auto raw = read_text(dir + "/a.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(Safetensors, ZeroCopyViewsAndSlices) {
  const auto dir = temp_dir("st");
  auto w = at::randn({6, 5});
  save_safetensors(dir + "/w.safetensors", {{"w", w}});
  auto f = SafetensorsFile::open(dir + "/w.safetensors");
  auto a = f.tensor("w"), b = f.tensor("w");
  EXPECT_EQ(a.data_ptr(), b.data_ptr());  // both views of the one mapping: no copy
  auto r = f.rows("w", 2, 5);
  EXPECT_TRUE(r.equal(w.narrow(0, 2, 3)));
  EXPECT_EQ(static_cast<char*>(r.data_ptr()) - static_cast<char*>(a.data_ptr()), 2 * 5 * 4);
  EXPECT_TRUE(f.cols("w", 1, 4).equal(w.narrow(1, 1, 3)));
  EXPECT_TRUE(f.cols("w", 1, 4, at::kBFloat16).equal(w.narrow(1, 1, 3).to(at::kBFloat16)));
  // Writes to a view stay private (copy-on-write), the file is unchanged.
  a.fill_(7);
  EXPECT_TRUE(SafetensorsFile::open(dir + "/w.safetensors").tensor("w").equal(w));
  EXPECT_THROW(f.rows("w", 4, 7), Error);
  EXPECT_THROW(f.cols("w", 0, 6), Error);
}

TEST(Safetensors, BadFilesGiveOneLineErrors) {
  const auto dir = temp_dir("bad");
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  // Truncated: shorter than the length field; and data cut short.
  write_text(dir + "/tiny.safetensors", "abc");
  EXPECT_NE(open_error(dir + "/tiny.safetensors").find("truncated"), std::string::npos);
  EXPECT_NE(open_error(raw_file(dir, "cut.safetensors", ok_header, 10)).find("past the end"), std::string::npos);
  // Header length past the end of the file.
  EXPECT_NE(open_error(raw_file(dir, "hlen.safetensors", ok_header, 16, 1 << 20)).find("header length"),
            std::string::npos);
  // Not JSON.
  EXPECT_NE(open_error(raw_file(dir, "json.safetensors", "{not json}", 0)).find("JSON"), std::string::npos);
  // Overlapping ranges.
  EXPECT_NE(open_error(raw_file(dir, "overlap.safetensors",
                                R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                12))
                .find("overlaps"),
            std::string::npos);
  // A gap between tensors.
  EXPECT_NE(open_error(raw_file(dir, "gap.safetensors",
                                R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                12))
                .find("gap"),
            std::string::npos);
  // Unknown dtype.
  EXPECT_NE(open_error(raw_file(dir, "dtype.safetensors", R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4))
                .find("unknown dtype 'F99'"),
            std::string::npos);
  // Shape × dtype size != byte range.
  EXPECT_NE(open_error(raw_file(dir, "shape.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
                .find("shape × dtype size is 12 bytes"),
            std::string::npos);
  // Missing tensor.
  const auto good = raw_file(dir, "good.safetensors", ok_header, 16);
  auto f = SafetensorsFile::open(good);
  try {
    f.tensor("nope");
    ADD_FAILURE() << "no error for a missing tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'nope'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(good), std::string::npos);
  }
  // Missing file.
  EXPECT_NE(open_error(dir + "/absent.safetensors").find("cannot open"), std::string::npos);
}

TEST(Safetensors, ReadsTheFixtureCheckpoint) {
  auto f = SafetensorsFile::open(stories_dir() + "/model.safetensors");
  EXPECT_EQ(f.names().size(), 47u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const auto& e = f.info("model.embed_tokens.weight");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(e.dtype, at::kFloat);
}
