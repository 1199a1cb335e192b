// `lopa tokenize`: text → token ids with a Hugging Face tokenizer, without special tokens (like HF
// add_special_tokens=False). --input FILE holds one {"text": ...} object per line; --text one string.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "apps/commands.h"
#include "apps/options.h"
#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

namespace {

void print_ids(const std::vector<int64_t>& ids) {
  std::string line = "{\"ids\": [";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ", ";
    line += std::to_string(ids[i]);
  }
  line += "]}\n";
  std::cout << line;
}

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description desc("tokenize");
  desc.add_options()
      ("tokenizer", po::value<std::string>()->required(), "model or tokenizer directory holding tokenizer.json (or the tokenizer.json file)")
      ("input", po::value<std::string>(), "file with one JSON object {\"text\": ...} per line")
      ("text", po::value<std::string>(), "a single string to tokenize");
  auto opts = parse_options("tokenize", "--tokenizer DIR (--input FILE | --text STR)", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  LOPA_CHECK(vm.count("input") + vm.count("text") == 1, "lopa tokenize: give exactly one of --input FILE and --text STR");

  const std::string dir = vm["tokenizer"].as<std::string>();
  struct stat st;
  const bool is_file = ::stat(dir.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const Tokenizer tok = is_file ? Tokenizer::from_files(dir) : Tokenizer::from_dir(dir);

  if (vm.count("text")) {
    print_ids(tok.encode(vm["text"].as<std::string>(), false));
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
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", lineno, ": invalid JSON: ", e.what());
    }
    LOPA_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), path, ":", lineno,
               ": expected a JSON object with a string \"text\"");
    try {
      print_ids(tok.encode(j["text"].get<std::string>(), false));
    } catch (const Error& e) {
      fail(path, ":", lineno, ": ", e.what());
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace lopa::app
