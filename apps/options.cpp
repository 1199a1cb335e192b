#include "apps/options.h"

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "runtime/base/error.h"

namespace lopa::app {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The lines of a --config file as Boost's parser reads them (comments from '#', trimmed), checked
// first so that every mistake names the file and line: Boost names neither, and an empty file would
// surface later as a missing required option that does not mention the file.
void check_config_lines(const std::string& path, const std::string& text, const std::string& command,
                        const po::options_description& desc) {
  std::istringstream in(text);
  std::string raw, section;
  std::map<std::string, int> first_line;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    LOPA_CHECK(raw.find('\0') == std::string::npos, path, ":", n, ": NUL byte in the line");
    const std::string line = trim(raw.substr(0, raw.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[') {
      LOPA_CHECK(line.back() == ']', path, ":", n, ": '", line, "': a section header is [name]");
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const size_t eq = line.find('=');
    const std::string key = eq == std::string::npos ? "" : trim(line.substr(0, eq));
    LOPA_CHECK(!key.empty(), path, ":", n, ": '", line, "': expected KEY = VALUE");
    const std::string name = section.empty() ? key : section + "." + key;
    LOPA_CHECK(desc.find_nothrow(name, false), path, ":", n, ": unknown key '", name, "' (see lopa ", command,
               " --help)");
    const auto [it, fresh] = first_line.emplace(name, n);
    LOPA_CHECK(fresh, path, ":", n, ": key '", name, "' is given twice (first on line ", it->second, ")");
  }
  LOPA_CHECK(!first_line.empty(), path, ": empty config file (no KEY = VALUE line)");
}

}  // namespace

ParsedOptions parse_options(const std::string& command, const std::string& usage,
                            const po::options_description& desc, const std::vector<std::string>& args,
                            bool allow_config) {
  po::options_description all("Options");
  all.add_options()("help,h", "print this help");
  if (allow_config) all.add_options()("config", po::value<std::string>(), "INI file with KEY = VALUE lines");
  all.add(desc);

  ParsedOptions out;
  try {
    auto parsed = po::command_line_parser(args).options(all).run();
    for (const auto& o : parsed.options)
      if (o.position_key >= 0 || o.unregistered)
        fail("lopa ", command, ": unexpected argument '", o.original_tokens.empty() ? o.string_key : o.original_tokens[0],
             "' (see lopa ", command, " --help)");
    po::store(parsed, out.vm);
    if (out.vm.count("help")) {
      std::cout << "usage: lopa " << command << " " << usage << "\n\n" << all << "\n";
      out.help = true;
      return out;
    }
    if (allow_config && out.vm.count("config")) {
      const auto path = out.vm["config"].as<std::string>();
      std::ifstream file(path, std::ios::binary);
      LOPA_CHECK(file, path, ": cannot open config file");
      std::stringstream text;
      text << file.rdbuf();
      check_config_lines(path, text.str(), command, desc);
      std::istringstream in(text.str());
      try {
        po::store(po::parse_config_file(in, desc, /*allow_unregistered=*/false), out.vm);
      } catch (const po::error& e) {
        fail(path, ": ", e.what());
      }
    }
    po::notify(out.vm);
  } catch (const po::error& e) {
    fail("lopa ", command, ": ", e.what(), " (see lopa ", command, " --help)");
  }
  return out;
}

std::vector<int64_t> parse_id_list(const std::string& text, const std::string& what, int64_t vocab_size) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    std::string item = text.substr(pos, comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LOPA_CHECK(!item.empty() && used == item.size(), what, ": '", item, "' is not a token id (expected e.g. 1,2,3)");
    LOPA_CHECK(id >= 0 && id < vocab_size, what, ": token id ", id, " outside the vocabulary (", vocab_size, ")");
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace lopa::app
