#include "apps/options.h"

#include <fstream>
#include <iostream>

#include "runtime/base/error.h"

namespace lopa::app {

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
      std::ifstream in(path);
      LOPA_CHECK(in, path, ": cannot open config file");
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
