// Slow tokenizer files → the converter's tokenizer.json (see slow_tokenizer.h). Which converter: the
// tokenizer_class of tokenizer_config.json (its SLOW_TO_FAST_CONVERTERS entry), else config.json's
// model_type (as AutoTokenizer picks the class), else the files themselves.
#include "runtime/tokenizer/slow_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unordered_map>

#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

using json = nlohmann::json;

namespace {

enum class Family { kNone, kBert, kRoberta, kGpt2 };

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_object(const std::string& path) {
  json j;
  try {
    j = parse_json(read_text(path));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  LOPA_CHECK(j.is_object(), path, ": top level is not a JSON object");
  return j;
}

Family family_of_class(std::string cls) {
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  static const std::set<std::string> bert = {"BertTokenizer", "ConvBertTokenizer", "DistilBertTokenizer",
                                             "DPRReaderTokenizer", "DPRQuestionEncoderTokenizer",
                                             "DPRContextEncoderTokenizer", "ElectraTokenizer", "LayoutLMTokenizer",
                                             "LayoutLMv2Tokenizer", "LxmertTokenizer", "MobileBertTokenizer",
                                             "SqueezeBertTokenizer"};
  static const std::set<std::string> roberta = {"RobertaTokenizer", "BartTokenizer", "LayoutLMv3Tokenizer",
                                                "LongformerTokenizer", "LEDTokenizer", "MvpTokenizer"};
  static const std::set<std::string> gpt2 = {"GPT2Tokenizer", "CodeGenTokenizer"};
  if (bert.count(cls)) return Family::kBert;
  if (roberta.count(cls)) return Family::kRoberta;
  if (gpt2.count(cls)) return Family::kGpt2;
  return Family::kNone;
}

Family family_of_model_type(const std::string& t) {
  if (t == "bert" || t == "distilbert" || t == "electra" || t == "mobilebert" || t == "squeezebert" ||
      t == "convbert" || t == "layoutlm" || t == "dpr" || t == "lxmert")
    return Family::kBert;
  if (t == "roberta" || t == "bart" || t == "longformer" || t == "led" || t == "mvp") return Family::kRoberta;
  if (t == "gpt2" || t == "codegen") return Family::kGpt2;
  return Family::kNone;
}

// One special token as the slow class holds it: content plus AddedToken flags.
struct Special {
  std::string content;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

std::optional<Special> special_from(const json& v, const std::string& where, const std::string& key) {
  if (v.is_null()) return std::nullopt;
  Special s;
  if (v.is_string()) {
    s.content = v.get<std::string>();
    return s;
  }
  LOPA_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), where, ": \"", key,
             "\" is neither a string nor an AddedToken object");
  s.content = v["content"].get<std::string>();
  s.lstrip = v.value("lstrip", false);
  s.rstrip = v.value("rstrip", false);
  s.single_word = v.value("single_word", false);
  s.normalized = v.value("normalized", false);
  return s;
}

// vocab.txt as BertTokenizer's load_vocab reads it: line i is token i; a repeated token keeps its
// first place in the order but takes the later index, as a Python dict assignment does.
void read_vocab_txt(const std::string& path, TokenizerJson& tj) {
  const std::string text = read_text(path);
  std::unordered_map<std::string, size_t> pos;
  size_t begin = 0;
  int64_t index = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string tok = text.substr(begin, end - begin);
    if (!tok.empty() && tok.back() == '\r') tok.pop_back();  // Python's universal newlines
    auto it = pos.find(tok);
    if (it != pos.end()) tj.vocab[it->second].second = index;
    else pos.emplace(tok, tj.vocab.size()), tj.vocab.emplace_back(tok, index);
    ++index;
    begin = end + 1;
  }
  LOPA_CHECK(!tj.vocab.empty(), path, ": empty vocabulary");
  tj.has_vocab = true;
}

void read_vocab_json(const std::string& path, TokenizerJson& tj) {
  const json v = read_object(path);
  for (auto it = v.begin(); it != v.end(); ++it) {
    LOPA_CHECK(it.value().is_number_integer() && it.value().get<int64_t>() >= 0, path, ": vocab entry '", it.key(),
               "' has no non-negative integer id");
    tj.vocab.emplace_back(it.key(), it.value().get<int64_t>());
  }
  LOPA_CHECK(!tj.vocab.empty(), path, ": empty vocabulary");
  tj.has_vocab = true;
}

// merges.txt as GPT2Tokenizer reads it: split at "\n", drop the first line (the "#version" header) and
// the last piece (empty after the final newline), each line split at whitespace into a pair.
void read_merges_txt(const std::string& path, TokenizerJson& tj) {
  const std::string text = read_text(path);
  std::vector<std::string> lines;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find('\n', begin);
    lines.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::istringstream ws(lines[i]);
    std::vector<std::string> parts;
    std::string w;
    while (ws >> w) parts.push_back(w);
    LOPA_CHECK(parts.size() == 2, path, ":", i + 1, ": a merge is two tokens separated by whitespace, not '", lines[i], "'");
    tj.merges.push_back({parts[0], parts[1], true});
  }
  tj.has_merges = true;
}

}  // namespace

bool has_slow_tokenizer_files(const std::string& dir) {
  if (!is_file(dir + "/vocab.txt") && !(is_file(dir + "/vocab.json") && is_file(dir + "/merges.txt"))) return false;
  // Slow files of a class converted here only (a Qwen2 or Llama directory without tokenizer.json still
  // serves the commands that take token ids); a config that cannot be read is reported when loading.
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (!is_file(cfg_path)) return true;
  try {
    const json cfg = read_object(cfg_path);
    return !cfg.contains("tokenizer_class") || !cfg["tokenizer_class"].is_string() ||
           family_of_class(cfg["tokenizer_class"].get<std::string>()) != Family::kNone;
  } catch (const Error&) {
    return true;
  }
}

SlowTokenizer convert_slow_tokenizer(const std::string& dir) {
  SlowTokenizer out;
  const std::string cfg_path = dir + "/tokenizer_config.json", stm_path = dir + "/special_tokens_map.json";
  const json cfg = is_file(cfg_path) ? read_object(cfg_path) : json::object();
  const json stm = is_file(stm_path) ? read_object(stm_path) : json::object();
  out.config_where = is_file(cfg_path) ? cfg_path : dir;

  // -- which converter
  const bool has_txt = is_file(dir + "/vocab.txt");
  const bool has_bpe = is_file(dir + "/vocab.json") && is_file(dir + "/merges.txt");
  Family fam = Family::kNone;
  std::string cls;
  if (cfg.contains("tokenizer_class") && cfg["tokenizer_class"].is_string()) {
    cls = cfg["tokenizer_class"].get<std::string>();
    fam = family_of_class(cls);
    LOPA_CHECK(fam != Family::kNone, cfg_path, ": tokenizer_class '", cls,
               "' has no slow-file converter here (BERT, RoBERTa and GPT-2 families only); give a tokenizer.json");
  } else if (is_file(dir + "/config.json")) {
    const json mc = read_object(dir + "/config.json");
    if (mc.contains("model_type") && mc["model_type"].is_string()) fam = family_of_model_type(mc["model_type"].get<std::string>());
  }
  if (fam == Family::kNone) {
    if (has_txt) {
      fam = Family::kBert;
    } else if (has_bpe) {
      read_vocab_json(dir + "/vocab.json", out.tj);
      std::set<std::string> have;
      for (const auto& [t, id] : out.tj.vocab) have.insert(t);
      fam = have.count("<s>") && have.count("</s>") && have.count("<mask>") ? Family::kRoberta : Family::kGpt2;
    } else {
      fail(dir, ": no tokenizer files (tokenizer.json, vocab.txt, or vocab.json + merges.txt)");
    }
  }

  // -- vocabulary
  if (fam == Family::kBert) {
    LOPA_CHECK(has_txt, dir, ": a BERT-family tokenizer needs vocab.txt");
    out.where = dir + "/vocab.txt";
    read_vocab_txt(out.where, out.tj);
  } else {
    LOPA_CHECK(has_bpe, dir, ": a byte-level BPE tokenizer needs vocab.json and merges.txt");
    if (!out.tj.has_vocab) read_vocab_json(dir + "/vocab.json", out.tj);
    out.where = dir + "/merges.txt";
    read_merges_txt(out.where, out.tj);
  }
  std::unordered_map<std::string, int64_t> vocab;
  int64_t next_id = 0;
  for (const auto& [t, id] : out.tj.vocab) {
    vocab[t] = id;
    next_id = std::max(next_id, id + 1);
  }

  // -- special tokens: the slow class's defaults, then tokenizer_config.json, then special_tokens_map.json
  std::map<std::string, std::optional<Special>> sp;
  auto set_default = [&](const char* key, const char* content, bool lstrip = false) {
    Special s;
    s.content = content;
    s.lstrip = lstrip;
    sp[key] = s;
  };
  if (fam == Family::kBert) {
    for (auto [k, v] : {std::pair{"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"},
                        {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}})
      set_default(k, v);
  } else if (fam == Family::kRoberta) {
    for (auto [k, v] : {std::pair{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"sep_token", "</s>"}, {"cls_token", "<s>"},
                        {"unk_token", "<unk>"}, {"pad_token", "<pad>"}})
      set_default(k, v);
    set_default("mask_token", "<mask>", /*lstrip=*/true);  // RobertaTokenizer: the mask takes the space before it
  } else {
    for (const char* k : {"unk_token", "bos_token", "eos_token"}) set_default(k, "<|endoftext|>");
  }
  std::vector<Special> additional;
  for (const auto* src : {&cfg, &stm}) {
    const std::string& where = src == &cfg ? cfg_path : stm_path;
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
      if (src->contains(key)) {
        auto s = special_from((*src)[key], where, key);
        // A RoBERTa mask given as a plain string still gets lstrip (RobertaTokenizer wraps it so).
        if (s && fam == Family::kRoberta && std::string(key) == "mask_token" && (*src)[key].is_string()) s->lstrip = true;
        sp[key] = s;
      }
    if (src->contains("additional_special_tokens") && (*src)["additional_special_tokens"].is_array()) {
      additional.clear();
      for (const auto& v : (*src)["additional_special_tokens"])
        if (auto s = special_from(v, where, "additional_special_tokens")) additional.push_back(*s);
    }
  }

  // -- added tokens: added_tokens_decoder (authoritative), added_tokens.json, then the special tokens
  json added = json::array();
  std::set<std::string> added_contents;
  auto add = [&](int64_t id, const std::string& content, bool special, bool lstrip, bool rstrip, bool single_word,
                 bool normalized) {
    if (added_contents.count(content)) return;
    added_contents.insert(content);
    added.push_back({{"id", id}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
                     {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}});
    next_id = std::max(next_id, id + 1);
  };
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    std::map<int64_t, json> by_id;
    for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
      int64_t id = -1;
      try {
        id = std::stoll(it.key());
      } catch (const std::exception&) {
      }
      LOPA_CHECK(id >= 0 && it.value().is_object() && it.value().contains("content"), cfg_path,
                 ": added_tokens_decoder entry '", it.key(), "' is not an id with an AddedToken object");
      by_id[id] = it.value();
    }
    for (const auto& [id, t] : by_id) {
      const bool special = t.value("special", false);
      add(id, t["content"].get<std::string>(), special, t.value("lstrip", false), t.value("rstrip", false),
          t.value("single_word", false), t.value("normalized", !special));
    }
  }
  if (is_file(dir + "/added_tokens.json")) {
    const json at = read_object(dir + "/added_tokens.json");
    std::map<int64_t, std::string> by_id;
    for (auto it = at.begin(); it != at.end(); ++it) {
      LOPA_CHECK(it.value().is_number_integer(), dir, "/added_tokens.json: token '", it.key(), "' has no integer id");
      by_id[it.value().get<int64_t>()] = it.key();
    }
    for (const auto& [id, content] : by_id) add(id, content, false, false, false, false, true);
  }
  auto id_of = [&](const std::string& content) {
    for (const auto& t : added)
      if (t["content"] == content) return t["id"].get<int64_t>();
    auto v = vocab.find(content);
    return v != vocab.end() ? v->second : next_id;
  };
  std::vector<Special> specials;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (sp.count(key) && sp[key]) specials.push_back(*sp[key]);
  specials.insert(specials.end(), additional.begin(), additional.end());
  for (const auto& s : specials) add(id_of(s.content), s.content, true, s.lstrip, s.rstrip, s.single_word, s.normalized);

  // -- the converter's pipeline
  json tree = json::object();
  tree["added_tokens"] = added;
  auto token = [&](const char* key) -> std::string {
    LOPA_CHECK(sp.count(key) && sp[key], out.config_where, ": the ", key, " this tokenizer needs is null");
    return sp[key]->content;
  };
  const bool add_prefix_space = cfg.value("add_prefix_space", false);
  if (fam == Family::kBert) {
    const bool basic = cfg.value("do_basic_tokenize", true);  // without the basic tokenizer the converter turns all off
    json strip = cfg.contains("strip_accents") ? cfg["strip_accents"] : json(nullptr);
    tree["model"] = {{"type", "WordPiece"}, {"unk_token", token("unk_token")}, {"continuing_subword_prefix", "##"},
                     {"max_input_chars_per_word", 100}};
    tree["normalizer"] = {{"type", "BertNormalizer"}, {"clean_text", true},
                          {"handle_chinese_chars", basic && cfg.value("tokenize_chinese_chars", true)},
                          {"strip_accents", basic ? strip : json(false)},
                          {"lowercase", basic && cfg.value("do_lower_case", true)}};
    tree["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    const std::string cls_tok = token("cls_token"), sep_tok = token("sep_token");
    auto st = [](const std::string& t, int type) { return json{{"SpecialToken", {{"id", t}, {"type_id", type}}}}; };
    auto seq = [](const char* s, int type) { return json{{"Sequence", {{"id", s}, {"type_id", type}}}}; };
    tree["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {st(cls_tok, 0), seq("A", 0), st(sep_tok, 0)}},
        {"pair", {st(cls_tok, 0), seq("A", 0), st(sep_tok, 0), seq("B", 1), st(sep_tok, 1)}},
        {"special_tokens",
         {{cls_tok, {{"id", cls_tok}, {"ids", {id_of(cls_tok)}}, {"tokens", {cls_tok}}}},
          {sep_tok, {{"id", sep_tok}, {"ids", {id_of(sep_tok)}}, {"tokens", {sep_tok}}}}}}};
    tree["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  } else {
    tree["model"] = {{"type", "BPE"}, {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false}};
    tree["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true},
                             {"use_regex", true}};
    tree["decoder"] = {{"type", "ByteLevel"}};
    if (fam == Family::kRoberta) {
      const std::string cls_tok = token("cls_token"), sep_tok = token("sep_token");
      tree["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", {sep_tok, id_of(sep_tok)}},
                                {"cls", {cls_tok, id_of(cls_tok)}}};
    } else if (cfg.value("add_bos_token", false)) {
      const std::string bos = token("bos_token");
      tree["post_processor"] = {
          {"type", "TemplateProcessing"},
          {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair",
           {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
            {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {id_of(bos)}}, {"tokens", {bos}}}}}}};
    } else {
      tree["post_processor"] = {{"type", "ByteLevel"}, {"trim_offsets", false}};
    }
  }
  out.tj.tree = std::move(tree);

  // -- what the loader reads from a tokenizer_config.json
  json& c = out.config;
  c = json::object();
  static const char* const kClassName[] = {"", "BertTokenizerFast", "RobertaTokenizerFast", "GPT2TokenizerFast"};
  c["tokenizer_class"] = cls.empty() ? kClassName[static_cast<int>(fam)] : cls;
  for (const auto& [key, s] : sp)
    if (s) c[key] = s->content;
  return out;
}

}  // namespace lopa
