// lopa: Low-Rank Prompt Adaptation and its baselines on frozen foundation models.
// Dispatches to one subcommand; every error surfaces here as a single line and a non-zero exit.
#include <cstring>
#include <exception>
#include <iostream>

#include "apps/commands.h"
#include "runtime/base/error.h"

namespace lopa::app {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      // {"name", cmd_name, "one-line summary"}, one line per command (declared in commands.h)
      {"info", cmd_info, "describe a Hugging Face checkpoint: architecture, parameters, dtype, tokenizer, BLAS"},
      {"tokenize", cmd_tokenize, "text to token ids with a model's tokenizer.json (no special tokens)"},
      {"generate", cmd_generate, "generate text from a checkpoint (greedy or temperature/top-p sampling, KV cache)"},
      {"logits", cmd_logits, "full-vocabulary logits at every position of JSON-line inputs (parity checks)"},
      {"embed", cmd_embed, "one pooled embedding per JSON-line input (encoders: RoBERTa/CodeBERT, BERT, CodeSage; decoders)"},
      {"init-model", cmd_init_model, "write a randomly initialised checkpoint of any supported architecture"},
      {"train", cmd_train, "train one cell (LoPA, PT, IDPG, LoRA, prefix, FFT); resumes from RUN_DIR/checkpoint"},
      {"eval", cmd_eval, "evaluate a trained run's adapter; write predictions.jsonl and metrics"},
      {"score", cmd_score, "score predictions (GLUE labels, MBPP/CruxEval code, sandboxed) and print metrics as JSON"},
      {"sweep", cmd_sweep, "expand a sweep spec; run it locally or as a SLURM job array; show status"},
      {"report", cmd_report, "aggregate run logs under a root into tables (md, csv, latex) and plots"},
      {"pretrain", cmd_pretrain, "pretrain the embedded default FM on the synthetic language (cached)"},
      {"demo", cmd_demo, "the embedded default: pretrain, sweep PT/IDPG/LoPA/LoRA, table and plot"},
      {"bench", cmd_bench, "benchmark a training step or generation: tokens/s, MFU vs measured matmul peak, peak RSS"},
      {"serve", cmd_serve, "serve the FM and trained runs over OpenAI-compatible HTTP, many tasks in one batch"},
      {"prompt", cmd_prompt, "print the soft prompt (base64 float32) a PT / IDPG / LoPA run gives a text, for serve"},
  };
  return table;
}

}  // namespace lopa::app

static void print_usage() {
  std::cout << "usage: lopa COMMAND [OPTIONS]   (lopa COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& c : lopa::app::commands()) std::cout << "  " << c.name << std::string(14 - std::strlen(c.name), ' ') << c.summary << "\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  for (const auto& c : lopa::app::commands()) {
    if (name != c.name) continue;
    try {
      return c.run(lopa::app::Args(argv + 2, argv + argc));
    } catch (const std::exception& e) {
      std::cerr << lopa::str("lopa ", name, ": error: ", e.what(), "\n") << std::flush;  // one write (see abort_job)
      return 1;
    }
  }
  std::cerr << "lopa: unknown command '" << name << "' (lopa --help lists them)" << std::endl;
  return 2;
}
