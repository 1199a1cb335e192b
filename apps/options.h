// Option parsing shared by every command: Boost.Program_options over the command line and an
// optional INI file (--config FILE). The command line wins; unknown keys in either are an error.
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lopa::app {

namespace po = boost::program_options;

struct ParsedOptions {
  po::variables_map vm;
  bool help = false;  // --help was given: usage has been printed, the command should return 0
};

// Parses `args` for `command` against `desc` (which must not declare --help or --config; both are
// added here). Positional arguments are rejected. Throws lopa::Error with a one-line message.
ParsedOptions parse_options(const std::string& command, const std::string& usage,
                            const po::options_description& desc, const std::vector<std::string>& args,
                            bool allow_config = true);

// "1,2,3" → token ids, each in [0, vocab_size); throws naming `what` for anything else.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& what, int64_t vocab_size);

}  // namespace lopa::app
