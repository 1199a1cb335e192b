// The `lopa` subcommands. Each takes the arguments after its name and returns the exit status;
// errors are thrown as lopa::Error and reported once by main().
#pragma once

#include <string>
#include <vector>

namespace lopa::app {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  int (*run)(const Args& args);
  const char* summary;
};

// Defined in main.cpp: every command, in the order `lopa --help` lists them.
const std::vector<Command>& commands();

// One declaration per command, defined in apps/cmd_<name>.cpp.
int cmd_info(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_generate(const Args& args);
int cmd_logits(const Args& args);
int cmd_embed(const Args& args);
int cmd_init_model(const Args& args);
int cmd_train(const Args& args);
int cmd_eval(const Args& args);
int cmd_score(const Args& args);
int cmd_sweep(const Args& args);
int cmd_report(const Args& args);
int cmd_pretrain(const Args& args);
int cmd_demo(const Args& args);
int cmd_bench(const Args& args);
int cmd_serve(const Args& args);
int cmd_prompt(const Args& args);

}  // namespace lopa::app
