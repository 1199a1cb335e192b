// Fuzzing safetensors files: a small valid file (several dtypes, metadata) written by
// save_safetensors, then mutated in its length prefix (huge, short, long), its JSON header (offsets,
// shapes, dtypes, numbers, invalid UTF-8, nesting, NaN; with the prefix kept consistent or not) and
// its bytes (flips, truncation). A file that opens must give every tensor, whole and as rows.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "runtime/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lopa;
using namespace lopa::fuzz;

namespace {

std::string with_prefix(uint64_t n, const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = (char)((n >> (8 * i)) & 0xff);
  return out + header + data;
}

void open_and_read(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  for (const auto& name : f.names()) {
    at::Tensor t = f.tensor(name);
    (void)t.sum();  // touches every byte of the range
    if (t.dim() >= 1 && t.size(0) > 0) (void)f.rows(name, 0, 1, at::kFloat).sum();
  }
}

}  // namespace

TEST(FuzzSafetensors, Seed18001Cases400) {
  const uint64_t seed = 18001;
  const std::string dir = temp_dir("safetensors");
  const std::string path = dir + "/model.safetensors";
  auto w = at::arange(12, at::kFloat).view({3, 4}) * 0.25;
  save_safetensors(path,
                   {{"w", w}, {"h", w.to(at::kBFloat16)}, {"i", at::arange(5, at::kLong)}, {"b", at::ones({2, 2}, at::kHalf)}},
                   {{"format", "pt"}, {"note", "fuzz"}});
  const std::string base = read_bytes(path);
  ASSERT_NO_THROW(open_and_read(path));
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= (uint64_t)(unsigned char)base[i] << (8 * i);
  ASSERT_LT(hlen + 8, base.size());
  const std::string header = base.substr(8, hlen), data = base.substr(8 + hlen);

  Tally t;
  for (int i = 0; i < 400 * case_scale(); ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string out;
    switch (m.below(5)) {
      case 0: {  // the length prefix alone
        static const uint64_t odd[] = {0, 1, 2, 7, 8, hlen - 1, hlen + 1, hlen + 8, (uint64_t)base.size(),
                                       (uint64_t)base.size() + 1, 100000000ull, 1ull << 31, 1ull << 32,
                                       (1ull << 63) - 1, 1ull << 63, ~0ull, ~0ull - 7};
        const uint64_t n = odd[m.below(sizeof odd / sizeof odd[0])];
        m.note += "prefix=" + std::to_string(n) + " ";
        out = with_prefix(n, header, data);
        break;
      }
      case 1: case 2: {  // the header's JSON, the prefix following it (or, sometimes, not)
        std::string h = header;
        const int n = 1 + (int)m.below(3);
        for (int k = 0; k < n; ++k) mutate_json(h, m, 200);
        const bool consistent = m.chance(0.8);
        if (!consistent) m.note += "stale-prefix ";
        out = with_prefix(consistent ? h.size() : hlen, h, data);
        break;
      }
      case 3: {  // the data only: NaN / Inf / denormal floats, or flipped bits (a valid file)
        std::string d = data;
        if (m.chance(0.5)) {
          static const uint32_t specials[] = {0x7fc00000u, 0xffc00000u, 0x7f800000u, 0xff800000u, 0x00000001u, 0x7f7fffffu};
          const uint32_t v = specials[m.below(6)];
          const size_t at = 4 * m.below(d.size() / 4);
          std::memcpy(&d[at], &v, 4);
          m.note += "data-float@" + std::to_string(at) + " ";
        } else {
          m.flip_bits(d, 32);
        }
        out = with_prefix(hlen, header, d);
        break;
      }
      default: {  // raw bytes of the whole file
        out = base;
        if (m.chance(0.5)) m.flip_bits(out, 16);
        else m.truncate(out);
        break;
      }
    }
    run_case(t, "safetensors seed=" + std::to_string(seed) + " case=" + std::to_string(i) + ": " + m.note, path, out,
             open_and_read);
  }
  report("safetensors", seed, t);
  EXPECT_GT(t.rejected, 100);
  EXPECT_GT(t.accepted, 0);
  std::filesystem::remove_all(dir);
}

// A header nested 100,000 deep (issue 18) is rejected at once by the JSON reader's depth limit, by
// name, naming the file (200 levels get as far as the header's own checks: an entry that is no tensor).
TEST(FuzzSafetensors, DeepNestingInTheHeaderIsRejectedByName) {
  const std::string dir = temp_dir("safetensors-deep");
  const std::string path = dir + "/model.safetensors";
  save_safetensors(path, {{"w", at::ones({2, 2})}});
  const std::string base = read_bytes(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= (uint64_t)(unsigned char)base[i] << (8 * i);
  const std::string header = base.substr(8, hlen), data = base.substr(8 + hlen);
  for (const int depth : {200, 300, 100000}) {
    std::string h = header;
    h.insert(h.find('{') + 1, "\"zz\": " + Mutator::nested(depth, false) + ", ");
    write_bytes(path, with_prefix(h.size(), h, data));
    try {
      open_and_read(path);
      EXPECT_EQ(depth, 200) << "a header nested " << depth << " deep was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(names_file(msg, path)) << msg;
      if (depth > 256) {
        EXPECT_NE(msg.find("nested deeper than"), std::string::npos) << msg;
      }
    }
  }
  std::filesystem::remove_all(dir);
}
