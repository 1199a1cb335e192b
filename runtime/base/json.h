// parse_json: the one way lopa parses JSON text (config.json, tokenizer.json, safetensors headers,
// adapter configs, JSONL rows), with a nesting limit. nlohmann's parser is iterative, but the value it
// builds is copied, compared and dumped recursively, so 100,000 nested arrays overflow the stack; the
// limit stops such input at the parser. Header-only, like error.h, so that the LibTorch-free libraries
// (lopa_tokenizer, results/, cluster/) share it.
#pragma once

#include <fstream>
#include <istream>
#include <iterator>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/base/error.h"

namespace lopa {

// Far above any real file (tokenizer.json nests about 6 deep), far below a stack overflow.
inline constexpr int kMaxJsonDepth = 256;

namespace detail {
template <typename Json>
Json parse_json_limited(std::string_view text, int max_depth) {
  return Json::parse(text.begin(), text.end(),
                     [max_depth](int depth, typename Json::parse_event_t event, Json&) {
                       // depth counts the containers open around the event; a container's own start
                       // event is reported at its parent's depth.
                       if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
                           depth >= max_depth)
                         fail("JSON nested deeper than ", max_depth, " levels");
                       return true;
                     });
}
}  // namespace detail

// Parses `text`. Throws lopa::Error "JSON nested deeper than N levels" past the limit and nlohmann's
// parse_error for malformed text; callers wrap both with the file (and line) they read it from.
inline nlohmann::json parse_json(std::string_view text, int max_depth = kMaxJsonDepth) {
  return detail::parse_json_limited<nlohmann::json>(text, max_depth);
}
inline nlohmann::json parse_json(std::istream& in, int max_depth = kMaxJsonDepth) {
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return parse_json(text, max_depth);
}
inline nlohmann::ordered_json parse_ordered_json(std::string_view text, int max_depth = kMaxJsonDepth) {
  return detail::parse_json_limited<nlohmann::ordered_json>(text, max_depth);
}

// parse_json that never throws: a discarded value (is_discarded()) for malformed or too deep text, for
// readers that treat a broken file as absent.
inline nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth) {
  try {
    return parse_json(text, max_depth);
  } catch (const std::exception&) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}
inline nlohmann::ordered_json parse_ordered_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth) {
  try {
    return parse_ordered_json(text, max_depth);
  } catch (const std::exception&) {
    return nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
  }
}

// Reads and parses a whole file; every error is one line naming it.
inline nlohmann::json read_json_file(const std::string& path, int max_depth = kMaxJsonDepth) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open");
  try {
    return parse_json(in, max_depth);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

}  // namespace lopa
