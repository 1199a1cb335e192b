// `lopa pretrain`: makes the embedded default FM (experiments/pretrain.h): a tiny Llama trained by lopa
// on the synthetic language, cached by its configuration and reused when already complete; or, with
// --objective mlm, a masked LM (RoBERTa, BERT, …) from a config.json on GLUE train text and / or text
// files (experiments/train/mlm_pretrain.h).
#include <iostream>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/pretrain_options.h"
#include "experiments/train/mlm_pretrain.h"
#include "experiments/train/pretrain.h"
#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_runtime.h"

namespace lopa::app {

void add_pretrain_options(po::options_description& desc, const PretrainConfig& d) {
  desc.add_options()
      ("hidden-size", po::value<int64_t>()->default_value(d.hidden_size), "FM hidden size d")
      ("layers", po::value<int64_t>()->default_value(d.num_layers), "FM decoder layers")
      ("heads", po::value<int64_t>()->default_value(d.num_heads), "attention heads")
      ("kv-heads", po::value<int64_t>()->default_value(d.num_kv_heads), "key/value heads (GQA)")
      ("intermediate-size", po::value<int64_t>()->default_value(d.intermediate_size), "MLP width")
      ("pretrain-steps", po::value<int64_t>()->default_value(d.steps), "optimizer steps")
      ("pretrain-batch-size", po::value<int64_t>()->default_value(d.batch_size), "sequences per step (global)")
      ("seq-len", po::value<int64_t>()->default_value(d.seq_len), "tokens per packed sequence")
      ("pretrain-lr", po::value<double>()->default_value(d.lr), "peak learning rate (AdamW, warmup then cosine)")
      ("warmup-steps", po::value<int64_t>()->default_value(d.warmup_steps), "linear warmup steps")
      ("pretrain-seed", po::value<uint64_t>()->default_value(d.seed), "weight initialisation seed");
}

PretrainConfig pretrain_config_from(const po::variables_map& vm) {
  PretrainConfig c;
  c.hidden_size = vm["hidden-size"].as<int64_t>();
  c.num_layers = vm["layers"].as<int64_t>();
  c.num_heads = vm["heads"].as<int64_t>();
  c.num_kv_heads = vm["kv-heads"].as<int64_t>();
  c.intermediate_size = vm["intermediate-size"].as<int64_t>();
  c.steps = vm["pretrain-steps"].as<int64_t>();
  c.batch_size = vm["pretrain-batch-size"].as<int64_t>();
  c.seq_len = vm["seq-len"].as<int64_t>();
  c.lr = vm["pretrain-lr"].as<double>();
  c.warmup_steps = vm["warmup-steps"].as<int64_t>();
  c.seed = vm["pretrain-seed"].as<uint64_t>();
  c.log_every = std::max<int64_t>(1, c.steps / 16);
  c.eval_every = std::max<int64_t>(1, c.steps / 4);
  return c;
}

int cmd_pretrain(const Args& args) {
  po::options_description desc("pretrain");
  desc.add_options()
      ("out", po::value<std::string>()->default_value(""),
       "checkpoint directory (default: ${LOPA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/lopa}/demo-fm-<hash of the options>)")
      ("tp", po::value<int64_t>()->default_value(1), "tensor-parallel ranks (under mpirun; the rest are data parallel)")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | auto")
      ("objective", po::value<std::string>()->default_value("clm"),
       "clm: the demo's Llama on the synthetic language | mlm: a masked LM from --model-config on --glue-data / --text")
      ("model-config", po::value<std::string>()->default_value(""),
       "mlm: config.json of a *ForMaskedLM architecture (e.g. bench/configs/roberta-tiny.json at the tokenizer's vocab_size)")
      ("tokenizer", po::value<std::string>()->default_value(""), "mlm: tokenizer directory (needs a mask token)")
      ("glue-data", po::value<std::string>()->default_value(""), "mlm: data root whose glue/<TASK>/train.tsv text is the corpus")
      ("text", po::value<std::vector<std::string>>()->multitoken(), "mlm: text files, one document per line")
      ("mask-prob", po::value<double>()->default_value(0.15), "mlm: share of tokens selected (80% mask, 10% random, 10% kept)");
  add_pretrain_options(desc, PretrainConfig{});
  auto parsed = parse_options("pretrain", "[--out DIR] [OPTIONS]   (mpirun -np N lopa pretrain ... for data parallel)",
                              desc, args);
  if (parsed.help) return 0;
  const auto objective = parsed.vm["objective"].as<std::string>();
  LOPA_CHECK(objective == "clm" || objective == "mlm", "--objective: unknown value '", objective, "' (clm, mlm)");
  if (objective == "mlm") {
    const auto base = pretrain_config_from(parsed.vm);
    MlmPretrainConfig m;
    m.model_config = parsed.vm["model-config"].as<std::string>();
    m.tokenizer_dir = parsed.vm["tokenizer"].as<std::string>();
    LOPA_CHECK(!m.model_config.empty() && !m.tokenizer_dir.empty(), "--objective mlm: needs --model-config and --tokenizer");
    m.steps = base.steps;
    m.batch_size = base.batch_size;
    m.seq_len = base.seq_len;
    m.warmup_steps = base.warmup_steps;
    m.lr = base.lr;
    m.seed = base.seed;
    m.mask_prob = parsed.vm["mask-prob"].as<double>();
    m.log_every = std::max<int64_t>(1, m.steps / 16);
    std::vector<std::string> docs;
    if (const auto g = parsed.vm["glue-data"].as<std::string>(); !g.empty()) docs = glue_train_documents(g);
    if (parsed.vm.count("text"))
      for (const auto& f : parsed.vm["text"].as<std::vector<std::string>>()) {
        auto more = text_documents(f);
        docs.insert(docs.end(), more.begin(), more.end());
      }
    LOPA_CHECK(!docs.empty(), "--objective mlm: no corpus (give --glue-data DIR and / or --text FILE)");
    pretrain_mlm(m, docs, parsed.vm["out"].as<std::string>(), std::cerr);
    std::cout << parsed.vm["out"].as<std::string>() << std::endl;
    return 0;
  }
  auto c = pretrain_config_from(parsed.vm);
  c.tp = parsed.vm["tp"].as<int64_t>();
  c.device = parsed.vm["device"].as<std::string>();
  auto out = parsed.vm["out"].as<std::string>();
  if (out.empty()) out = default_pretrain_dir(c);
  MpiRuntime mpi(MpiRuntime::Mode::IfLaunched);
  return run_rank([&] {
    const auto r = ensure_pretrained(c, out, std::cerr);
    if (r.reused)
      std::cerr << "lopa pretrain: " << out << " is complete (loss " << r.first_loss << " -> " << r.final_loss
                << "); nothing to do" << std::endl;
    std::cout << out << std::endl;
    return 0;
  });
}

}  // namespace lopa::app
