// BPE merge loop (after HF tokenizers' Word::merge_all) and word → symbols (BPE::merge_word).
#include "runtime/tokenizer/bpe.h"

#include <cstdio>
#include <queue>

#include "runtime/tokenizer/unicode.h"

namespace lopa {

namespace {

constexpr size_t kCacheMaxWordBytes = 256;  // as HF: longer words are not cached
constexpr size_t kCacheMaxEntries = 1 << 18;

struct Symbol {
  int32_t id;
  int32_t prev, next;  // -1 at the ends
  bool alive;
};

struct Candidate {
  int32_t rank, pos, new_id;
  // std::priority_queue pops the largest: make the lowest rank, then the leftmost, the largest.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BpeModel::BpeModel(BpeModel&& o) noexcept
    : vocab(std::move(o.vocab)),
      id_to_token(std::move(o.id_to_token)),
      merges(std::move(o.merges)),
      unk_token(std::move(o.unk_token)),
      fuse_unk(o.fuse_unk),
      byte_fallback(o.byte_fallback),
      ignore_merges(o.ignore_merges),
      continuing_subword_prefix(std::move(o.continuing_subword_prefix)),
      end_of_word_suffix(std::move(o.end_of_word_suffix)) {
  std::copy(o.byte_ids_, o.byte_ids_ + 256, byte_ids_);
}

void BpeModel::finish() {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab) max_id = std::max(max_id, id);
  id_to_token.assign(max_id + 1, "");
  for (const auto& [tok, id] : vocab) id_to_token[id] = tok;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab.find(name);
    byte_ids_[b] = it == vocab.end() ? -1 : it->second;
  }
}

void BpeModel::merge_word(const std::string& w, std::vector<int32_t>& out) const {
  // 1. One symbol per character (or per byte via <0xNN>, or unk).
  std::vector<Symbol> syms;
  syms.reserve(w.size());
  auto add = [&](int32_t id) {
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, idx - 1, -1, true});
    if (idx > 0) syms[idx - 1].next = idx;
  };
  std::optional<int32_t> unk_id;
  if (unk_token) {
    auto it = vocab.find(*unk_token);
    if (it != vocab.end()) unk_id = it->second;
  }
  bool pending_unk = false;
  size_t pos = 0;
  std::string s;
  while (pos < w.size()) {
    const size_t begin = pos;
    uint32_t cp;
    if (!unicode::decode_one(w, pos, cp)) ++pos;  // input is validated upstream; never loop forever
    const bool is_first = begin == 0, is_last = pos >= w.size();
    s.assign(w, begin, pos - begin);
    if (!is_first && !continuing_subword_prefix.empty()) s.insert(0, continuing_subword_prefix);
    if (is_last && !end_of_word_suffix.empty()) s += end_of_word_suffix;
    auto it = vocab.find(s);
    if (it != vocab.end()) {
      if (pending_unk) add(*unk_id), pending_unk = false;
      add(it->second);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {
        // As HF: a pending unk is not flushed before the byte tokens.
        for (unsigned char b : s) add(byte_ids_[b]);
        continue;
      }
    }
    if (unk_id) {
      if (pending_unk && !fuse_unk) add(*unk_id);
      pending_unk = true;
    }
    // without an unk token the character is dropped, as HF does
  }
  if (pending_unk) add(*unk_id);

  // 2. Merge the lowest-ranked adjacent pair until none is left.
  std::priority_queue<Candidate> queue;
  auto push_pair = [&](int32_t i) {
    const int32_t j = syms[i].next;
    if (j < 0) return;
    auto it = merges.find((uint64_t(uint32_t(syms[i].id)) << 32) | uint32_t(syms[j].id));
    if (it != merges.end()) queue.push({it->second.first, i, it->second.second});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = syms[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = syms[left.next];
    // Skip entries that went stale when a neighbour was merged away.
    auto it = merges.find((uint64_t(uint32_t(left.id)) << 32) | uint32_t(right.id));
    if (it == merges.end() || it->second.second != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

void BpeModel::tokenize(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheMaxEntries) cache_.emplace(word, std::move(ids));
  }
}

}  // namespace lopa
