// Tokenizer: loads tokenizer.json (+ tokenizer_config.json), or the slow files through
// slow_tokenizer.h, and runs the Hugging Face pipeline: added-token split → normalizer →
// pre-tokenizer → BPE / WordPiece → post-processor (single or pair template); decoding runs the
// decoder chain. Every malformed input is a one-line lopa::Error naming the file.
#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <unordered_map>

#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/tokenizer/bert.h"
#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/pretokenize.h"
#include "runtime/tokenizer/slow_tokenizer.h"
#include "runtime/tokenizer/tokenizer_json.h"
#include "runtime/tokenizer/unicode.h"
#include "runtime/tokenizer/wordpiece.h"

namespace lopa {

using json = nlohmann::json;

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_json(ss.str());
  } catch (const std::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

// A string-or-{"String": s} pattern of Replace / Split. Regex patterns are handled by the caller.
std::string string_pattern(const std::string& path, const json& p, const char* where) {
  if (p.is_string()) return p.get<std::string>();
  if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
  if (p.is_object() && p.contains("Regex"))
    fail(path, ": ", where, " with a Regex pattern is not supported (only String patterns)");
  fail(path, ": ", where, " has a malformed pattern");
}

std::string type_of(const std::string& path, const json& j, const char* what) {
  LOPA_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), path, ": ", what, " without a \"type\"");
  return j["type"].get<std::string>();
}

// ---- normalizers ----

struct Normalizer {
  enum class Kind { kSequence, kPrepend, kReplace, kNFC, kNFD, kStrip, kBert, kLowercase } kind = Kind::kSequence;
  std::vector<Normalizer> children;
  std::string a, b;  // Prepend: a; Replace: a → b
  bool strip_left = false, strip_right = false;
  bert::NormalizerOptions bert;

  std::string apply(std::string s) const {
    switch (kind) {
      case Kind::kSequence:
        for (const auto& c : children) s = c.apply(std::move(s));
        return s;
      case Kind::kPrepend:
        return s.empty() ? s : a + s;
      case Kind::kReplace:
        return unicode::replace_all(s, a, b);
      case Kind::kNFC:
        return unicode::nfc(s);
      case Kind::kNFD:
        return unicode::nfd(s);
      case Kind::kBert:
        return bert::normalize(s, bert);
      case Kind::kLowercase:
        return bert::lowercase(s);
      case Kind::kStrip: {
        auto cps = unicode::decode(s);
        size_t b0 = 0, e0 = cps.size();
        if (strip_left)
          while (b0 < e0 && unicode::is_whitespace(cps[b0])) ++b0;
        if (strip_right)
          while (e0 > b0 && unicode::is_whitespace(cps[e0 - 1])) --e0;
        return unicode::encode(std::vector<uint32_t>(cps.begin() + b0, cps.begin() + e0));
      }
    }
    return s;
  }
};

Normalizer parse_normalizer(const std::string& path, const json& j) {
  const std::string type = type_of(path, j, "normalizer");
  Normalizer n;
  try {
    if (type == "Sequence") {
      n.kind = Normalizer::Kind::kSequence;
      for (const auto& c : j.at("normalizers")) n.children.push_back(parse_normalizer(path, c));
    } else if (type == "Prepend") {
      n.kind = Normalizer::Kind::kPrepend;
      n.a = j.at("prepend").get<std::string>();
    } else if (type == "Replace") {
      n.kind = Normalizer::Kind::kReplace;
      n.a = string_pattern(path, j.at("pattern"), "Replace normalizer");
      n.b = j.at("content").get<std::string>();
    } else if (type == "NFC") {
      n.kind = Normalizer::Kind::kNFC;
    } else if (type == "NFD") {
      n.kind = Normalizer::Kind::kNFD;
    } else if (type == "Strip") {
      n.kind = Normalizer::Kind::kStrip;
      n.strip_left = j.value("strip_left", true);
      n.strip_right = j.value("strip_right", true);
    } else if (type == "BertNormalizer") {
      n.kind = Normalizer::Kind::kBert;
      n.bert.clean_text = j.value("clean_text", true);
      n.bert.handle_chinese_chars = j.value("handle_chinese_chars", true);
      if (j.contains("strip_accents") && !j["strip_accents"].is_null()) n.bert.strip_accents = j["strip_accents"].get<bool>();
      n.bert.lowercase = j.value("lowercase", true);
    } else if (type == "Lowercase") {
      n.kind = Normalizer::Kind::kLowercase;
    } else {
      fail(path, ": unsupported normalizer type '", type, "'");
    }
  } catch (const json::exception& e) {
    fail(path, ": malformed ", type, " normalizer: ", e.what());
  }
  return n;
}

// ---- pre-tokenizers ----

pretok::PreTokenizer parse_pretokenizer(const std::string& path, const json& j) {
  using pretok::PreTokenizer;
  const std::string type = type_of(path, j, "pre_tokenizer");
  PreTokenizer p;
  try {
    if (type == "Sequence") {
      p.kind = PreTokenizer::Kind::kSequence;
      for (const auto& c : j.at("pretokenizers")) p.children.push_back(parse_pretokenizer(path, c));
    } else if (type == "ByteLevel") {
      p.kind = PreTokenizer::Kind::kByteLevel;
      p.add_prefix_space = j.value("add_prefix_space", true);
      p.use_regex = j.value("use_regex", true);
    } else if (type == "Split") {
      const auto& pat = j.at("pattern");
      if (pat.is_object() && pat.contains("Regex")) {
        const std::string re = pat["Regex"].get<std::string>();
        auto which = pretok::recognize_regex(re);
        LOPA_CHECK(which, path, ": unsupported Split regex (only the GPT-2, Llama 3 and Qwen2 patterns are implemented): ", re);
        p.kind = PreTokenizer::Kind::kSplitRegex;
        p.regex = *which;
      } else {
        p.kind = PreTokenizer::Kind::kSplitString;
        p.literal = string_pattern(path, pat, "Split pre_tokenizer");
      }
      const std::string behavior = j.at("behavior").get<std::string>();
      if (behavior == "Removed") p.behavior = pretok::Behavior::kRemoved;
      else if (behavior == "Isolated") p.behavior = pretok::Behavior::kIsolated;
      else if (behavior == "MergedWithPrevious") p.behavior = pretok::Behavior::kMergedWithPrevious;
      else if (behavior == "MergedWithNext") p.behavior = pretok::Behavior::kMergedWithNext;
      else if (behavior == "Contiguous") p.behavior = pretok::Behavior::kContiguous;
      else fail(path, ": unknown Split behavior '", behavior, "'");
      p.invert = j.value("invert", false);
    } else if (type == "Metaspace") {
      p.kind = PreTokenizer::Kind::kMetaspace;
      p.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
      if (j.contains("prepend_scheme")) {
        const auto s = j["prepend_scheme"].get<std::string>();
        if (s == "always") p.prepend = PreTokenizer::Prepend::kAlways;
        else if (s == "first") p.prepend = PreTokenizer::Prepend::kFirst;
        else if (s == "never") p.prepend = PreTokenizer::Prepend::kNever;
        else fail(path, ": unknown Metaspace prepend_scheme '", s, "'");
      } else {
        p.prepend = j.value("add_prefix_space", true) ? PreTokenizer::Prepend::kAlways : PreTokenizer::Prepend::kNever;
      }
      p.split = j.value("split", true);
    } else if (type == "Digits") {
      p.kind = PreTokenizer::Kind::kDigits;
      p.individual_digits = j.value("individual_digits", false);
    } else if (type == "WhitespaceSplit") {
      p.kind = PreTokenizer::Kind::kWhitespaceSplit;
    } else if (type == "BertPreTokenizer") {
      p.kind = PreTokenizer::Kind::kBert;
    } else {
      fail(path, ": unsupported pre_tokenizer type '", type, "'");
    }
  } catch (const json::exception& e) {
    fail(path, ": malformed ", type, " pre_tokenizer: ", e.what());
  }
  return p;
}

// ---- decoders ----

const std::pair<const char*, const char*> kWordPieceCleanup[] = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
    {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};

struct Decoder {
  enum class Kind { kSequence, kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip, kWordPiece } kind = Kind::kSequence;
  std::vector<Decoder> children;
  std::string a, b;        // Replace a → b; Metaspace replacement a; Strip content a; WordPiece prefix a
  bool prepend = true;     // Metaspace: prepend_scheme != never; WordPiece: cleanup
  size_t start = 0, stop = 0;  // Strip

  void apply(std::vector<std::string>& toks) const {
    switch (kind) {
      case Kind::kSequence:
        for (const auto& c : children) c.apply(toks);
        return;
      case Kind::kByteLevel: {
        std::string bytes;
        for (const auto& t : toks) {
          std::string mine;
          bool ok = true;
          size_t pos = 0;
          uint32_t cp;
          while (pos < t.size()) {
            if (!unicode::decode_one(t, pos, cp)) { ok = false; break; }
            const int by = pretok::char_to_byte(cp);
            if (by < 0) { ok = false; break; }
            mine += static_cast<char>(by);
          }
          bytes += ok ? mine : t;  // a token with a char outside the map contributes its raw bytes
        }
        toks.assign(1, unicode::from_utf8_lossy(bytes));
        return;
      }
      case Kind::kMetaspace:
        for (size_t i = 0; i < toks.size(); ++i) toks[i] = unicode::replace_all(toks[i], a, i == 0 && prepend ? "" : " ");
        return;
      case Kind::kReplace:
        for (auto& t : toks) t = unicode::replace_all(t, a, b);
        return;
      case Kind::kByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        size_t nbytes = 0;
        auto flush = [&] {
          if (!nbytes) return;
          if (unicode::is_valid_utf8(bytes)) out.push_back(bytes);
          else
            for (size_t k = 0; k < nbytes; ++k) out.push_back("\xEF\xBF\xBD");
          bytes.clear();
          nbytes = 0;
        };
        for (auto& t : toks) {
          int value = -1;
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
            char* end = nullptr;
            const std::string hex = t.substr(3, 2);
            const long v = std::strtol(hex.c_str(), &end, 16);
            if (end == hex.c_str() + 2 && std::isxdigit(static_cast<unsigned char>(hex[0]))) value = static_cast<int>(v);
          }
          if (value >= 0) {
            bytes += static_cast<char>(value);
            ++nbytes;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        toks = std::move(out);
        return;
      }
      case Kind::kFuse: {
        std::string all;
        for (auto& t : toks) all += t;
        toks.assign(1, all);
        return;
      }
      case Kind::kWordPiece:
        // HF decoders/wordpiece.rs: a piece with the prefix glues on, any other gets a space; the
        // cleanup runs on each token after that (so " ." loses its space, "' s" keeps its own).
        for (size_t i = 0; i < toks.size(); ++i) {
          auto& t = toks[i];
          if (i != 0) {
            if (t.compare(0, a.size(), a) == 0) t.erase(0, a.size());
            else t.insert(t.begin(), ' ');
          }
          if (prepend)
            for (const auto& [from, to] : kWordPieceCleanup) t = unicode::replace_all(t, from, to);
        }
        return;
      case Kind::kStrip:
        for (auto& t : toks) {
          auto cps = unicode::decode(t, "token");
          size_t b0 = 0, e0 = cps.size();
          const auto c = unicode::decode(a, "Strip content");
          const uint32_t ch = c.empty() ? ' ' : c[0];
          while (b0 < e0 && b0 < start && cps[b0] == ch) ++b0;
          size_t cut = 0;
          while (e0 > b0 && cut < stop && cps[e0 - 1] == ch) --e0, ++cut;
          t = unicode::encode(std::vector<uint32_t>(cps.begin() + b0, cps.begin() + e0));
        }
        return;
    }
  }
};

Decoder parse_decoder(const std::string& path, const json& j) {
  const std::string type = type_of(path, j, "decoder");
  Decoder d;
  try {
    if (type == "Sequence") {
      d.kind = Decoder::Kind::kSequence;
      for (const auto& c : j.at("decoders")) d.children.push_back(parse_decoder(path, c));
    } else if (type == "ByteLevel") {
      d.kind = Decoder::Kind::kByteLevel;
    } else if (type == "Metaspace") {
      d.kind = Decoder::Kind::kMetaspace;
      d.a = j.value("replacement", std::string("\xE2\x96\x81"));
      if (j.contains("prepend_scheme")) d.prepend = j["prepend_scheme"].get<std::string>() != "never";
      else d.prepend = j.value("add_prefix_space", true);
    } else if (type == "Replace") {
      d.kind = Decoder::Kind::kReplace;
      d.a = string_pattern(path, j.at("pattern"), "Replace decoder");
      d.b = j.at("content").get<std::string>();
    } else if (type == "ByteFallback") {
      d.kind = Decoder::Kind::kByteFallback;
    } else if (type == "Fuse") {
      d.kind = Decoder::Kind::kFuse;
    } else if (type == "WordPiece") {
      d.kind = Decoder::Kind::kWordPiece;
      d.a = j.value("prefix", std::string("##"));
      d.prepend = j.value("cleanup", true);
    } else if (type == "Strip") {
      d.kind = Decoder::Kind::kStrip;
      d.a = j.at("content").get<std::string>();
      d.start = j.at("start").get<size_t>();
      d.stop = j.at("stop").get<size_t>();
    } else {
      fail(path, ": unsupported decoder type '", type, "'");
    }
  } catch (const json::exception& e) {
    fail(path, ": malformed ", type, " decoder: ", e.what());
  }
  return d;
}

// ---- added tokens ----

struct AddedToken {
  int32_t id;
  std::string content;
  std::string pattern;  // what is matched: content, or for normalized tokens content run through the normalizer (as HF)
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

struct Segment {
  int32_t id;  // -1: text to tokenize
  size_t begin, end;
};

// Finds added tokens in text leftmost-longest (as HF's Aho-Corasick matcher) and applies the
// single_word / lstrip / rstrip rules of HF's AddedVocabulary::find_matches, quirks included: the
// matches are found in the raw text first, so the whitespace an rstrip token swallows can still
// hold (or start) the next match, which is then emitted too (HF 0.23.2: "<Rn>    x", with
// "<Rn>" rstrip and "    " an added token of the same trie, is [<Rn>, "    ", x]).
class AddedMatcher {
 public:
  void build(const std::vector<AddedToken>& all, bool normalized) {
    for (const auto& t : all)
      if (t.normalized == normalized && !t.pattern.empty()) tokens_.push_back(&t);
    std::sort(tokens_.begin(), tokens_.end(),
              [](const AddedToken* x, const AddedToken* y) { return x->pattern.size() > y->pattern.size(); });
    for (size_t k = 0; k < tokens_.size(); ++k)
      by_first_[static_cast<unsigned char>(tokens_[k]->pattern[0])].push_back(k);
  }

  void split(const std::string& s, size_t base, std::vector<Segment>& out) const {
    size_t start_offset = 0;
    const size_t n = s.size();
    for (size_t i = 0; i < n && !tokens_.empty();) {
      const auto& cands = by_first_[static_cast<unsigned char>(s[i])];
      const AddedToken* hit = nullptr;
      for (size_t k : cands)
        if (s.compare(i, tokens_[k]->pattern.size(), tokens_[k]->pattern) == 0) {
          hit = tokens_[k];
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      size_t start = i, stop = i + hit->pattern.size();
      i = stop;  // the next match starts after this one's pattern, not after what rstrip takes
      if (hit->single_word) {
        const bool start_space = start == 0 || !ends_with_word(s, start);
        const bool stop_space = stop == n || !starts_with_word(s, stop);
        if (!start_space || !stop_space) continue;
      }
      if (hit->lstrip) {
        size_t b = start;
        while (b > 0) {
          size_t p = b - 1;
          while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
          size_t q = p;
          uint32_t cp;
          if (!unicode::decode_one(s, q, cp) || !unicode::is_whitespace(cp)) break;
          b = p;
        }
        start = std::min(std::max(b, start_offset), stop);  // HF panics when a previous rstrip passed stop
      }
      if (hit->rstrip) {
        size_t q = stop;
        uint32_t cp;
        while (q < n) {
          size_t r = q;
          if (!unicode::decode_one(s, r, cp) || !unicode::is_whitespace(cp)) break;
          q = r;
        }
        stop = q;
      }
      if (start_offset < start) out.push_back({-1, base + start_offset, base + start});
      out.push_back({hit->id, base + start, base + stop});
      start_offset = stop;  // may move back inside a previous rstrip's whitespace, as in HF
    }
    if (start_offset < n) out.push_back({-1, base + start_offset, base + n});
  }

 private:
  static bool ends_with_word(const std::string& s, size_t end) {
    size_t p = end - 1;
    while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    uint32_t cp;
    return unicode::decode_one(s, p, cp) && unicode::is_word(cp);
  }
  static bool starts_with_word(const std::string& s, size_t begin) {
    uint32_t cp;
    return unicode::decode_one(s, begin, cp) && unicode::is_word(cp);
  }
  std::vector<const AddedToken*> tokens_;  // longest first
  std::vector<size_t> by_first_[256];
};

std::optional<std::string> token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

// A post-processor as the pieces of its single and pair templates (HF TemplateProcessing; Roberta-,
// Bert- and ByteLevel processing are written as templates with the same ids and type ids).
struct TemplatePiece {
  int seq;                   // 0: $A, 1: $B, -1: special-token ids (only with add_special_tokens)
  std::vector<int64_t> ids;  // seq == -1
  int64_t type_id;
};
struct PostTemplate {
  std::vector<TemplatePiece> single{{0, {}, 0}};
  std::vector<TemplatePiece> pair{{0, {}, 0}, {1, {}, 1}};  // HF's default: type ids 0 and 1, nothing added
};

struct Tokenizer::Impl {
  std::string path;
  BpeModel model;  // the vocab (and for BPE the merges)
  std::optional<WordPieceModel> wordpiece;
  bool byte_level = false;
  std::optional<Normalizer> normalizer;
  std::optional<pretok::PreTokenizer> pre;
  std::optional<Decoder> decoder;
  std::vector<AddedToken> added;  // stable storage: the matchers point into it
  std::unordered_map<int32_t, size_t> added_by_id;
  std::unordered_map<std::string, int32_t> added_by_content;
  AddedMatcher raw_matcher, normalized_matcher;
  PostTemplate post;
  std::string post_desc;
  std::optional<int64_t> bos, eos, pad, mask;

  std::optional<int64_t> lookup(const std::string& tok) const {
    auto a = added_by_content.find(tok);
    if (a != added_by_content.end()) return a->second;
    auto v = model.vocab.find(tok);
    if (v != model.vocab.end()) return v->second;
    return std::nullopt;
  }

  void encode_text(const std::string& text, bool at_origin, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    const std::string norm = normalizer ? normalizer->apply(text) : text;
    std::vector<Segment> segs;
    normalized_matcher.split(norm, 0, segs);
    for (const auto& s : segs) {
      if (s.id >= 0) {
        out.push_back(s.id);
        continue;
      }
      std::vector<pretok::Piece> pieces{{norm.substr(s.begin, s.end - s.begin), at_origin && s.begin == 0}};
      if (pre) pre->apply(pieces);
      for (const auto& p : pieces) {
        if (wordpiece) wordpiece->tokenize(model.vocab, p.text, out);
        else model.tokenize(p.text, out);
      }
    }
  }

  // One sequence as HF's encode_single_sequence: raw added tokens, then the pipeline on the rest.
  std::vector<int32_t> encode_sequence(const std::string& text) const {
    if (!unicode::is_valid_utf8(text)) unicode::decode(text, "Tokenizer::encode");  // throws with the offset
    std::vector<Segment> segs;
    raw_matcher.split(text, 0, segs);
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    for (const auto& s : segs) {
      if (s.id >= 0) ids.push_back(s.id);
      else encode_text(text.substr(s.begin, s.end - s.begin), s.begin == 0, ids);
    }
    return ids;
  }

  std::vector<int64_t> prefix() const {  // the special ids before $A in the single template
    std::vector<int64_t> out;
    for (const auto& p : post.single) {
      if (p.seq >= 0) break;
      out.insert(out.end(), p.ids.begin(), p.ids.end());
    }
    return out;
  }
  size_t added_count(bool pair) const {
    size_t n = 0;
    for (const auto& p : pair ? post.pair : post.single) n += p.ids.size();
    return n;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  const std::string tj = dir + "/tokenizer.json";
  const bool slow_files = file_exists(dir + "/vocab.txt") || (file_exists(dir + "/vocab.json") && file_exists(dir + "/merges.txt"));
  if (!file_exists(tj) && slow_files) return from_slow_dir(dir);  // names the class when it cannot convert it
  LOPA_CHECK(file_exists(tj), dir, ": no tokenizer.json in this directory (nor vocab.txt, nor vocab.json + merges.txt)");
  const std::string cj = dir + "/tokenizer_config.json";
  return from_files(tj, file_exists(cj) ? cj : "");
}

Tokenizer Tokenizer::from_slow_dir(const std::string& dir) {
  SlowTokenizer slow = convert_slow_tokenizer(dir);
  return build(slow.tj, slow.where, slow.config.dump(), slow.config_where);
}

bool Tokenizer::available(const std::string& dir) {
  return file_exists(dir + "/tokenizer.json") || has_slow_tokenizer_files(dir);
}

Tokenizer Tokenizer::from_files(const std::string& path, const std::string& config_path) {
  TokenizerJson tj = read_tokenizer_json(path);
  return build(tj, path, config_path.empty() ? std::string("{}") : read_json(config_path).dump(), config_path);
}

Tokenizer Tokenizer::build(TokenizerJson& tj, const std::string& path, const std::string& config_text,
                           const std::string& config_path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const json& j = tj.tree;
  LOPA_CHECK(j.is_object(), path, ": top level is not a JSON object");

  // -- model
  LOPA_CHECK(j.contains("model") && j["model"].is_object(), path, ": no \"model\" object");
  const json& m = j["model"];
  std::string mtype;
  if (m.contains("type")) {
    LOPA_CHECK(m["type"].is_string(), path, ": model \"type\" is not a string");
    mtype = m["type"].get<std::string>();
  } else if (tj.has_merges) {
    mtype = "BPE";  // the early serialization (GPT-2's, RoBERTa's files) has no type key
  } else {
    // BERT's early file: a WordPiece model is the one with a subword prefix or a word-length limit
    LOPA_CHECK(m.contains("continuing_subword_prefix") || m.contains("max_input_chars_per_word"), path,
               ": model has no \"type\" (and neither merges nor WordPiece keys to recognise it by)");
    mtype = "WordPiece";
  }
  LOPA_CHECK(mtype == "BPE" || mtype == "WordPiece", path, ": unsupported model type '", mtype,
             "' (BPE and WordPiece are implemented)");
  auto& bpe = impl->model;
  if (mtype == "WordPiece") {
    WordPieceModel wp;
    wp.path = path;
    try {
      LOPA_CHECK(tj.has_vocab, path, ": WordPiece model has no \"vocab\" object");
      if (m.contains("unk_token")) wp.unk_token = m["unk_token"].get<std::string>();
      if (m.contains("continuing_subword_prefix"))
        wp.continuing_subword_prefix = m["continuing_subword_prefix"].get<std::string>();
      if (m.contains("max_input_chars_per_word")) wp.max_input_chars_per_word = m["max_input_chars_per_word"].get<size_t>();
    } catch (const json::exception& e) {
      fail(path, ": malformed WordPiece model: ", e.what());
    }
    bpe.vocab.reserve(tj.vocab.size() * 2);
    for (auto& [tok, id] : tj.vocab) {
      LOPA_CHECK(id >= 0 && id <= INT32_MAX, path, ": vocab entry '", tok, "' has no non-negative integer id");
      bpe.vocab.emplace(std::move(tok), static_cast<int32_t>(id));
    }
    impl->wordpiece = std::move(wp);
  } else try {
    LOPA_CHECK(tj.has_vocab, path, ": BPE model has no \"vocab\" object");
    bpe.vocab.reserve(tj.vocab.size() * 2);
    for (auto& [tok, id] : tj.vocab) {
      LOPA_CHECK(id >= 0 && id <= INT32_MAX, path, ": vocab entry '", tok, "' has no non-negative integer id");
      bpe.vocab.emplace(std::move(tok), static_cast<int32_t>(id));
    }
    auto str_or_empty = [&](const char* key) {
      return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : std::string();
    };
    bpe.continuing_subword_prefix = str_or_empty("continuing_subword_prefix");
    bpe.end_of_word_suffix = str_or_empty("end_of_word_suffix");
    if (m.contains("unk_token") && m["unk_token"].is_string()) bpe.unk_token = m["unk_token"].get<std::string>();
    bpe.fuse_unk = m.value("fuse_unk", false);
    bpe.byte_fallback = m.value("byte_fallback", false);
    bpe.ignore_merges = m.value("ignore_merges", false);
    if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0)
      fail(path, ": BPE dropout is not supported (encoding must be deterministic)");
    LOPA_CHECK(tj.has_merges, path, ": BPE model has no \"merges\" array");
    bpe.merges.reserve(tj.merges.size() * 2);
    const size_t plen = bpe.continuing_subword_prefix.size();
    for (size_t r = 0; r < tj.merges.size(); ++r) {
      auto& e = tj.merges[r];
      std::string a, b;
      if (!e.is_pair) {
        const std::string& s = e.first;
        const size_t sp = s.find(' ');
        LOPA_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, path, ": merge ", r, " '", s,
                   "' is not two tokens separated by one space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = std::move(e.first);
        b = std::move(e.second);
      }
      auto ia = bpe.vocab.find(a), ib = bpe.vocab.find(b);
      LOPA_CHECK(ia != bpe.vocab.end(), path, ": merge ", r, " references unknown token '", a, "'");
      LOPA_CHECK(ib != bpe.vocab.end(), path, ": merge ", r, " references unknown token '", b, "'");
      const std::string merged = a + (b.size() >= plen ? b.substr(plen) : b);
      auto im = bpe.vocab.find(merged);
      LOPA_CHECK(im != bpe.vocab.end(), path, ": merge ", r, " makes '", merged, "', which is not in the vocab");
      bpe.merges.emplace((uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second),
                         std::make_pair(static_cast<int32_t>(r), im->second));
    }
    if (bpe.unk_token)
      LOPA_CHECK(bpe.vocab.count(*bpe.unk_token), path, ": unk_token '", *bpe.unk_token, "' is not in the vocab");
  } catch (const json::exception& e) {
    fail(path, ": malformed BPE model: ", e.what());
  }
  bpe.finish();

  // -- pipeline parts
  if (j.contains("normalizer") && !j["normalizer"].is_null()) impl->normalizer = parse_normalizer(path, j["normalizer"]);
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
    impl->pre = parse_pretokenizer(path, j["pre_tokenizer"]);
  if (j.contains("decoder") && !j["decoder"].is_null()) impl->decoder = parse_decoder(path, j["decoder"]);
  impl->byte_level = j.contains("pre_tokenizer") && j["pre_tokenizer"].dump().find("\"ByteLevel\"") != std::string::npos;

  // -- added tokens (tokenizer.json, then any extra ones tokenizer_config.json declares)
  auto add_token = [&](const json& t, const std::string& where) {
    try {
      AddedToken a;
      a.id = t.at("id").get<int32_t>();
      a.content = t.at("content").get<std::string>();
      a.single_word = t.value("single_word", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.special = t.value("special", false);
      a.normalized = t.value("normalized", !a.special);
      LOPA_CHECK(a.id >= 0, where, ": added token '", a.content, "' has a negative id");
      if (impl->added_by_content.count(a.content)) return;
      impl->added_by_content[a.content] = a.id;
      impl->added_by_id[a.id] = impl->added.size();
      impl->added.push_back(std::move(a));
    } catch (const json::exception& e) {
      fail(where, ": malformed added token: ", e.what());
    }
  };
  if (j.contains("added_tokens")) {
    LOPA_CHECK(j["added_tokens"].is_array(), path, ": \"added_tokens\" is not an array");
    for (const auto& t : j["added_tokens"]) add_token(t, path);
  }
  json config = json::object();
  {
    try {
      config = parse_json(config_text);
    } catch (const std::exception& e) {
      fail(config_path, ": invalid JSON: ", e.what());
    }
    LOPA_CHECK(config.is_object(), config_path, ": top level is not a JSON object");
    if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object())
      for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
        json t = it.value();
        try {
          t["id"] = std::stoi(it.key());
        } catch (const std::exception&) {
          fail(config_path, ": added_tokens_decoder key '", it.key(), "' is not an id");
        }
        add_token(t, config_path);
      }
  }
  for (auto& a : impl->added)
    a.pattern = a.normalized && impl->normalizer ? impl->normalizer->apply(a.content) : a.content;
  impl->raw_matcher.build(impl->added, false);
  impl->normalized_matcher.build(impl->added, true);

  // -- special tokens; a BERT / RoBERTa file whose config names none gets its class's defaults, as
  // transformers' BertTokenizerFast / RobertaTokenizerFast hold them (pad, mask and eos ids of an encoder).
  std::string cls = config.value("tokenizer_class", std::string());
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  const std::string post_type = j.contains("post_processor") && j["post_processor"].is_object()
                                    ? j["post_processor"].value("type", std::string())
                                    : std::string();
  const bool roberta_class = cls == "RobertaTokenizer" || (cls.empty() && post_type == "RobertaProcessing");
  const bool bert_class = cls == "BertTokenizer" || (cls.empty() && impl->wordpiece &&
                                                     j.contains("normalizer") && j["normalizer"].is_object() &&
                                                     j["normalizer"].value("type", std::string()) == "BertNormalizer");
  auto class_default = [&](const std::string& key) -> const char* {
    if (roberta_class) {
      if (key == "bos_token") return "<s>";
      if (key == "eos_token") return "</s>";
      if (key == "pad_token") return "<pad>";
      if (key == "mask_token") return "<mask>";
    }
    if (bert_class) {
      if (key == "pad_token") return "[PAD]";
      if (key == "mask_token") return "[MASK]";
    }
    return nullptr;
  };
  auto config_token = [&](const char* key) -> std::optional<int64_t> {
    if (!config.contains(key)) {
      const char* d = class_default(key);
      return d ? impl->lookup(d) : std::nullopt;
    }
    if (config[key].is_null()) return std::nullopt;
    auto content = token_content(config[key]);
    LOPA_CHECK(content, config_path, ": \"", key, "\" is neither a string nor an AddedToken object");
    return impl->lookup(*content);
  };
  impl->bos = config_token("bos_token");
  impl->eos = config_token("eos_token");
  impl->pad = config_token("pad_token");
  impl->mask = config_token("mask_token");

  // -- post-processor: the single and pair templates
  std::optional<PostTemplate> tpl;
  auto parse_template = [&](const json& p, const char* which) {
    const json& spec = p.at(which);
    const json specials = p.value("special_tokens", json::object());
    std::vector<TemplatePiece> out;
    auto special_ids = [&](const std::string& name) {
      LOPA_CHECK(specials.contains(name), path, ": TemplateProcessing uses special token '", name,
                 "' that its special_tokens map lacks");
      return specials[name].at("ids").get<std::vector<int64_t>>();
    };
    if (spec.is_string()) {
      // the string form "[CLS]:0 $A:0 [SEP]:0" (what TemplateProcessing's constructor takes)
      std::istringstream ws(spec.get<std::string>());
      std::string w;
      while (ws >> w) {
        int64_t type = 0;
        const size_t colon = w.rfind(':');
        if (colon != std::string::npos && colon + 1 < w.size() &&
            w.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
          type = std::stoll(w.substr(colon + 1));
          w.resize(colon);
        }
        if (!w.empty() && w[0] == '$') {
          const std::string id = w.substr(1);
          LOPA_CHECK(id.empty() || id == "A" || id == "B" || id == "0" || id == "1", path,
                     ": TemplateProcessing sequence '", w, "' is neither $A nor $B");
          out.push_back({id == "B" || id == "1" ? 1 : 0, {}, type});
        } else {
          out.push_back({-1, special_ids(w), type});
        }
      }
      return out;
    }
    for (const auto& piece : spec) {
      if (piece.contains("Sequence")) {
        const std::string id = piece["Sequence"].at("id").get<std::string>();
        LOPA_CHECK(id == "A" || id == "B", path, ": TemplateProcessing sequence id '", id, "' is neither A nor B");
        out.push_back({id == "B" ? 1 : 0, {}, piece["Sequence"].value("type_id", int64_t{0})});
      } else if (piece.contains("SpecialToken")) {
        const std::string name = piece["SpecialToken"].at("id").get<std::string>();
        out.push_back({-1, special_ids(name), piece["SpecialToken"].value("type_id", int64_t{0})});
      } else {
        fail(path, ": TemplateProcessing piece is neither Sequence nor SpecialToken");
      }
    }
    return out;
  };
  auto set_template = [&](PostTemplate t, const std::string& type) {
    LOPA_CHECK(!tpl, path, ": a Sequence post_processor with two processors that add tokens is not supported (", type, ")");
    tpl = std::move(t);
  };
  std::function<void(const json&)> parse_post = [&](const json& p) {
    const std::string type = type_of(path, p, "post_processor");
    try {
      if (type == "TemplateProcessing") {
        PostTemplate t;
        t.single = parse_template(p, "single");
        t.pair = p.contains("pair") ? parse_template(p, "pair") : t.single;
        set_template(std::move(t), type);
      } else if (type == "BertProcessing" || type == "RobertaProcessing") {
        const int64_t c = p.at("cls").at(1).get<int64_t>(), e = p.at("sep").at(1).get<int64_t>();
        PostTemplate t;
        t.single = {{-1, {c}, 0}, {0, {}, 0}, {-1, {e}, 0}};
        // BERT: [CLS] A [SEP] B [SEP] with B's type ids 1; RoBERTa: <s> A </s></s> B </s>, every type id 0
        if (type == "BertProcessing") t.pair = {{-1, {c}, 0}, {0, {}, 0}, {-1, {e}, 0}, {1, {}, 1}, {-1, {e}, 1}};
        else t.pair = {{-1, {c}, 0}, {0, {}, 0}, {-1, {e}, 0}, {-1, {e}, 0}, {1, {}, 0}, {-1, {e}, 0}};
        set_template(std::move(t), type);
      } else if (type == "ByteLevel") {
        // offsets only
      } else if (type == "Sequence") {
        for (const auto& c : p.at("processors")) parse_post(c);
      } else {
        fail(path, ": unsupported post_processor type '", type, "'");
      }
    } catch (const json::exception& e) {
      fail(path, ": malformed ", type, " post_processor: ", e.what());
    }
  };
  if (j.contains("post_processor") && !j["post_processor"].is_null()) parse_post(j["post_processor"]);

  const bool llama_class = cls.rfind("LlamaTokenizer", 0) == 0 || cls.rfind("CodeLlamaTokenizer", 0) == 0 ||
                           cls.rfind("GemmaTokenizer", 0) == 0;
  const bool cfg_has_flags = config.contains("add_bos_token") || config.contains("add_eos_token");
  const bool add_bos = config.value("add_bos_token", false), add_eos = config.value("add_eos_token", false);
  // transformers' LlamaTokenizerFast.update_post_processor: "bos:0 $A:0 eos:0" and, for a pair,
  // that followed by "bos:1 $B:1 eos:1" (each special only when its flag is on).
  auto flags_template = [&] {
    PostTemplate t;
    t.single.clear();
    t.pair.clear();
    for (int seq = 0; seq < 2; ++seq) {
      auto& pieces = seq == 0 ? t.single : t.pair;
      for (int k = 0; k <= seq; ++k) {
        if (add_bos && impl->bos) pieces.push_back({-1, {*impl->bos}, k});
        pieces.push_back({k, {}, k});
        if (add_eos && impl->eos) pieces.push_back({-1, {*impl->eos}, k});
      }
    }
    return t;
  };
  if (llama_class && cfg_has_flags) {
    if (add_bos) LOPA_CHECK(impl->bos, config_path, ": add_bos_token is true but there is no bos_token");
    if (add_eos) LOPA_CHECK(impl->eos, config_path, ": add_eos_token is true but there is no eos_token");
    impl->post = flags_template();
    impl->post_desc = "tokenizer_config add_bos/add_eos";
  } else if (tpl) {
    // The post-processor adds the special tokens; the config's add_bos_token never adds a second BOS.
    impl->post = std::move(*tpl);
    impl->post_desc = "post_processor template";
  } else {
    // No post-processor that adds tokens: LlamaTokenizer-style loaders follow the config flags.
    impl->post = flags_template();
    impl->post_desc = "tokenizer_config add_bos/add_eos";
  }
  const auto prefix = impl->prefix();
  if (!impl->bos && !prefix.empty()) impl->bos = prefix.front();
  return Tokenizer(std::move(impl));
}

Encoding Tokenizer::encode_full(const std::string& text, const std::string* pair, bool add_special_tokens) const {
  const Impl& im = *impl_;
  const std::vector<int32_t> a = im.encode_sequence(text);
  const std::vector<int32_t> b = pair ? im.encode_sequence(*pair) : std::vector<int32_t>();
  Encoding e;
  const size_t n = a.size() + b.size() + im.added_count(pair != nullptr);
  e.ids.reserve(n);
  e.type_ids.reserve(n);
  e.special_tokens_mask.reserve(n);
  for (const auto& piece : pair ? im.post.pair : im.post.single) {
    if (piece.seq < 0) {
      if (!add_special_tokens) continue;
      e.ids.insert(e.ids.end(), piece.ids.begin(), piece.ids.end());
      e.type_ids.insert(e.type_ids.end(), piece.ids.size(), piece.type_id);
      e.special_tokens_mask.insert(e.special_tokens_mask.end(), piece.ids.size(), 1);
    } else {
      const auto& seq = piece.seq == 0 ? a : b;
      e.ids.insert(e.ids.end(), seq.begin(), seq.end());
      e.type_ids.insert(e.type_ids.end(), seq.size(), piece.type_id);
      e.special_tokens_mask.insert(e.special_tokens_mask.end(), seq.size(), 0);
    }
  }
  return e;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  return encode_full(text, nullptr, add_special_tokens).ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int64_t id : ids) {
    auto a = im.added_by_id.find(static_cast<int32_t>(id));
    if (a != im.added_by_id.end() && id >= 0 && id <= INT32_MAX) {
      const auto& t = im.added[a->second];
      if (skip_special_tokens && t.special) continue;
      toks.push_back(t.pattern);  // HF's id → token of a normalized added token is its normalized form
      continue;
    }
    // Ids without a token are skipped, as HF does (a model's vocab may be padded past the tokenizer's).
    if (id < 0 || id >= static_cast<int64_t>(im.model.id_to_token.size()) || im.model.id_to_token[id].empty()) continue;
    const std::string& t = im.model.id_to_token[id];
    if (skip_special_tokens) {
      auto c = im.added_by_content.find(t);
      if (c != im.added_by_content.end() && im.added[im.added_by_id.at(c->second)].special) continue;
    }
    toks.push_back(t);
  }
  if (!im.decoder) {
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  im.decoder->apply(toks);
  std::string out;
  for (auto& t : toks) out += t;
  return out;
}

int64_t Tokenizer::vocab_size() const {
  int64_t n = static_cast<int64_t>(impl_->model.id_to_token.size());
  for (const auto& a : impl_->added) n = std::max<int64_t>(n, a.id + 1);
  return n;
}

std::optional<int64_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int64_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int64_t> Tokenizer::pad_id() const { return impl_->pad; }
std::optional<int64_t> Tokenizer::mask_id() const { return impl_->mask; }

bool Tokenizer::adds_bos() const {
  const auto prefix = impl_->prefix();
  return impl_->bos && !prefix.empty() && prefix.front() == *impl_->bos;
}

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const { return impl_->lookup(token); }

std::string Tokenizer::id_to_token(int64_t id) const {
  const Impl& im = *impl_;
  if (id >= 0 && id <= INT32_MAX) {
    auto a = im.added_by_id.find(static_cast<int32_t>(id));
    if (a != im.added_by_id.end()) return im.added[a->second].pattern;
  }
  LOPA_CHECK(id >= 0 && id < static_cast<int64_t>(im.model.id_to_token.size()) && !im.model.id_to_token[id].empty(),
             im.path, ": no token has id ", id);
  return im.model.id_to_token[id];
}

std::string Tokenizer::describe() const {
  const Impl& im = *impl_;
  auto name = [&](const std::optional<int64_t>& id) {
    return id ? str(id_to_token(*id), "=", *id) : std::string("none");
  };
  std::string kind = im.wordpiece                ? "WordPiece"
                     : im.byte_level               ? "byte-level BPE"
                     : im.model.byte_fallback      ? "BPE with byte fallback"
                                                   : "BPE";
  const size_t before = im.prefix().size(), all = im.added_count(false);
  return str(kind, ", vocab ", vocab_size(), " (", im.added.size(), " added tokens), bos ", name(im.bos), ", eos ",
             name(im.eos), ", pad ", name(im.pad), ", add_special_tokens adds ", before, " before / ", all - before,
             " after (", im.post_desc, ")");
}

}  // namespace lopa
