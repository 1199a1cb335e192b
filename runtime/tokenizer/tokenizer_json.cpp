// SAX reader of tokenizer.json (see tokenizer_json.h): the DOM for the small parts, flat vectors
// for model.vocab and model.merges.
#include "runtime/tokenizer/tokenizer_json.h"

#include <fstream>
#include <sstream>

#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

namespace {

using json = nlohmann::json;

class Sax : public nlohmann::json_sax<json> {
 public:
  Sax(TokenizerJson& out, const std::string& path) : out_(out), path_(path) {}

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) {
      out_.vocab.emplace_back(std::move(key_), v);
      return true;
    }
    return value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) {
      if (v > static_cast<number_unsigned_t>(INT32_MAX)) return bad_vocab();
      out_.vocab.emplace_back(std::move(key_), static_cast<int64_t>(v));
      return true;
    }
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      out_.merges.push_back({std::move(v), std::string(), false});
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      if (pair_n_ >= 2) return bad_merge();
      (pair_n_ == 0 ? out_.merges.back().first : out_.merges.back().second) = std::move(v);
      ++pair_n_;
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return value(json()); }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return mode_ == Mode::kVocab ? bad_vocab() : bad_merge();
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::kVocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kVocab) return bad_vocab();
    if (mode_ == Mode::kMergePair) return bad_merge();
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_n_ = 0;
      out_.merges.push_back({std::string(), std::string(), true});
      return true;
    }
    if (in_model() && key_ == "merges") {
      mode_ = Mode::kMerges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_n_ != 2) return bad_merge();
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail(path_, ": invalid JSON: ", e.what());
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  // Directly inside the top-level "model" object.
  bool in_model() const { return stack_.size() == 2 && keys_[1] == "model" && stack_[1]->is_object(); }

  bool bad_vocab() { fail(path_, ": vocab entry '", key_, "' has no non-negative integer id"); }
  bool bad_merge() { fail(path_, ": merge ", out_.merges.size() - 1, " is neither \"a b\" nor [\"a\", \"b\"]"); }

  json* place(json&& v) {
    if (mode_ == Mode::kVocab) bad_vocab();
    if (mode_ == Mode::kMerges || mode_ == Mode::kMergePair) bad_merge();
    if (stack_.empty()) {
      out_.tree = std::move(v);
      return &out_.tree;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    LOPA_CHECK(stack_.size() < static_cast<size_t>(kMaxJsonDepth), path_, ": invalid JSON: nested deeper than ",
               kMaxJsonDepth, " levels");
    const std::string k = stack_.empty() || stack_.back()->is_array() ? std::string() : key_;
    stack_.push_back(place(std::move(container)));
    keys_.push_back(k);
    return true;
  }

  TokenizerJson& out_;
  const std::string& path_;
  Mode mode_ = Mode::kDom;
  std::vector<json*> stack_;
  std::vector<std::string> keys_;  // the key each open container sits under
  std::string key_;
  int pair_n_ = 0;
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  TokenizerJson out;
  Sax sax(out, path);
  try {
    json::sax_parse(text, &sax);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  return out;
}

}  // namespace lopa
