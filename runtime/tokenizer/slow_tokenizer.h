// The tokenizer.json that transformers' convert_slow_tokenizer.py builds from a directory's slow files
// (BertConverter for vocab.txt; RobertaConverter / GPT2Converter for vocab.json + merges.txt), with the
// special tokens the slow class, tokenizer_config.json, special_tokens_map.json and added_tokens.json give.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/tokenizer/tokenizer_json.h"

namespace lopa {

struct SlowTokenizer {
  TokenizerJson tj;        // as read_tokenizer_json would return the converted file
  nlohmann::json config;   // a tokenizer_config.json for it: tokenizer_class and the special-token strings
  std::string where;       // the file errors in the vocab / merges name
  std::string config_where;
};

// Whether DIR holds vocab.txt, or vocab.json and merges.txt, of a class this converter handles.
bool has_slow_tokenizer_files(const std::string& dir);
SlowTokenizer convert_slow_tokenizer(const std::string& dir);

}  // namespace lopa
