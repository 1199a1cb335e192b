// `lopa tokenize`: text → token ids with a Hugging Face tokenizer, like HF `tokenizer.encode(text, pair,
// add_special_tokens)`: without special tokens unless --add-special-tokens (then the post-processor's, e.g.
// `<s> … </s>`, `[CLS] … [SEP]`). --input FILE holds one {"text": ...} object per line, with an optional
// "pair" for a second sequence; --text one string (and --pair its second). A line with a pair also prints
// its token_type_ids.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "apps/commands.h"
#include "apps/options.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

namespace {

std::string list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

void print_encoding(const Tokenizer& tok, const std::string& text, const std::string* pair, bool add_special) {
  const Encoding e = tok.encode_full(text, pair, add_special);
  std::string line = "{\"ids\": " + list(e.ids);
  if (pair) line += ", \"token_type_ids\": " + list(e.type_ids);
  std::cout << line + "}\n";
}

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description desc("tokenize");
  desc.add_options()
      ("tokenizer", po::value<std::string>()->required(), "model or tokenizer directory holding tokenizer.json or slow files (vocab.txt; vocab.json + merges.txt), or the tokenizer.json file")
      ("input", po::value<std::string>(), "file with one JSON object {\"text\": ...} per line, optionally with a \"pair\" string")
      ("text", po::value<std::string>(), "a single string to tokenize")
      ("pair", po::value<std::string>(), "with --text: a second sequence (a sentence pair)")
      ("add-special-tokens", po::bool_switch(), "add what the post-processor adds (HF add_special_tokens=True)");
  auto opts = parse_options("tokenize", "--tokenizer DIR (--input FILE | --text STR [--pair STR]) [--add-special-tokens]",
                            desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  LOPA_CHECK(vm.count("input") + vm.count("text") == 1, "lopa tokenize: give exactly one of --input FILE and --text STR");
  LOPA_CHECK(!vm.count("pair") || vm.count("text"), "lopa tokenize: --pair goes with --text (in --input lines it is a \"pair\" key)");
  const bool add_special = vm["add-special-tokens"].as<bool>();

  const std::string dir = vm["tokenizer"].as<std::string>();
  struct stat st;
  const bool is_file = ::stat(dir.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const Tokenizer tok = is_file ? Tokenizer::from_files(dir) : Tokenizer::from_dir(dir);

  if (vm.count("text")) {
    const std::string pair = vm.count("pair") ? vm["pair"].as<std::string>() : std::string();
    print_encoding(tok, vm["text"].as<std::string>(), vm.count("pair") ? &pair : nullptr, add_special);
    return 0;
  }
  const std::string path = vm["input"].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open input file");
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json j;
    try {
      j = parse_json(line);
    } catch (const std::exception& e) {
      fail(path, ":", lineno, ": invalid JSON: ", e.what());
    }
    LOPA_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), path, ":", lineno,
               ": expected a JSON object with a string \"text\"");
    const bool has_pair = j.contains("pair") && !j["pair"].is_null();
    LOPA_CHECK(!has_pair || j["pair"].is_string(), path, ":", lineno, ": \"pair\" is not a string");
    try {
      const std::string pair = has_pair ? j["pair"].get<std::string>() : std::string();
      print_encoding(tok, j["text"].get<std::string>(), has_pair ? &pair : nullptr, add_special);
    } catch (const Error& e) {
      fail(path, ":", lineno, ": ", e.what());
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace lopa::app
