// The BPE model of Hugging Face tokenizers: vocab + ranked merges, applied to one pre-tokenized
// word by a priority-queue merge loop (O(n log n) in the word length), with byte fallback
// (<0xNN> tokens), unk fusing, ignore_merges, and a word → ids cache.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lopa {

class BpeModel {
 public:
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;  // "" for ids the vocab does not use
  // (left id << 32 | right id) → (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;

  // Fills id_to_token and the <0xNN> table; call once after vocab/merges are set.
  void finish();
  // Appends the ids of one word (a pre-tokenized piece).
  void tokenize(const std::string& word, std::vector<int32_t>& out) const;

  BpeModel() = default;
  BpeModel(BpeModel&& o) noexcept;

 private:
  void merge_word(const std::string& word, std::vector<int32_t>& out) const;
  int32_t byte_ids_[256];
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace lopa
