// The training keys of `lopa train` (DESIGN.md §3 core keys plus the method and trainer keys): one
// table of name, default, value rule, the methods that read the key, choices and help. The single
// source for `lopa train` (options, defaults, validation: experiments/train_config.cpp) and for the
// sweep planner (cluster/train_keys.h, which checks a spec's values with the same rules).
// Header-only and LibTorch-free on purpose: lopa_cluster is built without LibTorch and includes it.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace lopa {

enum class KeyType {
  Text,      // any text
  Path,      // a file or directory path (existence is checked by whoever opens it)
  Int,       // an integer >= min
  Real,      // a finite number >= min
  Fraction,  // a finite number in [0, 1)
  Choice,    // one of `choices`
  Bool,      // true|1|yes|on or false|0|no|off
};

struct TrainKey {
  const char* name;           // as written in INI files and on the command line (--name)
  const char* default_value;  // "" = none / unset
  KeyType type;
  double min;                 // Int, Real: the smallest accepted value
  const char* methods;        // comma-separated methods that read the key; "" = every method
  const char* choices;        // Choice: comma-separated accepted values
  const char* help;           // `lopa train --help`
  // What a run recorded before this key existed ran with, where that is not the default (nullptr: the
  // default). A key that changed behaviour when it came (holdout-max capped a holdout that had no cap)
  // must name the old behaviour, or an old run would be read, resumed or grouped as a run it was not.
  const char* before_key = nullptr;
};

// The value a config that lacks `k` (written before k existed) stands for.
inline const char* value_when_absent(const TrainKey& k) { return k.before_key ? k.before_key : k.default_value; }

// Every key, in the order of `lopa train --help`, config.ini and cell config files.
inline const std::vector<TrainKey>& train_keys() {
  using T = KeyType;
  // Prompt methods (a soft prompt of m virtual tokens): lopa, pt, idpg, prefix. Rank: lopa, lora.
  static const std::vector<TrainKey> keys = {
      {"model", "", T::Path, 0, "", "", "FM: Hugging Face checkpoint directory (required)"},
      {"encoder", "", T::Path, 0, "lopa,idpg", "", "LoPA/IDPG encoder checkpoint directory (default: the FM itself)"},
      {"task", "", T::Choice, 0, "", "sst2,rte,mrpc,qnli,qqp,mnli,mbpp,cruxeval-i,cruxeval-o,story-names,synth-facts",
       "sst2, rte, mrpc, qnli, qqp, mnli, mbpp, cruxeval-i, cruxeval-o, story-names, synth-facts (required)"},
      {"data-dir", "", T::Path, 0, "", "", "data root laid out like ../shared/data (GLUE tasks)"},
      {"method", "lopa", T::Choice, 0, "", "lopa,pt,idpg,lora,prefix,fft", "lopa, pt, idpg, lora, prefix, fft"},
      {"num-virtual-tokens", "10", T::Int, 1, "lopa,pt,idpg,prefix", "", "m: soft-prompt length (LoPA, PT, IDPG, prefix)"},
      {"rank", "1", T::Int, 1, "lopa,lora", "", "r: LoPA rank / LoRA rank"},
      {"lr", "0.001", T::Real, 0, "", "", "peak learning rate"},
      {"epochs", "1", T::Int, 0, "", "", "training epochs (ignored when max-steps > 0)"},
      {"max-steps", "0", T::Int, 0, "", "", "optimizer steps (0: epochs)"},
      {"batch-size", "8", T::Int, 1, "", "", "global batch size (examples per optimizer step, over all dp ranks)"},
      {"grad-accum", "1", T::Int, 1, "", "", "micro-batches per optimizer step"},
      {"max-length", "256", T::Int, 8, "", "", "max tokens of prompt + target (prompt cut from the left)"},
      {"seed", "0", T::Int, 0, "", "", "seed of initialisation, data order and dropout"},
      {"tp", "1", T::Int, 1, "", "", "tensor-parallel ranks (world = tp × dp)"},
      {"dtype", "float32", T::Choice, 0, "", "float32,fp32,bfloat16,bf16,float16,fp16",
       "FM dtype: float32, bfloat16, float16 (trainable parameters stay float32)"},
      {"autocast", "auto", T::Choice, 0, "", "auto,none,bf16,bfloat16,fp16,float16",
       "mixed precision of the forward: auto (bf16 on CUDA, none on CPU), none, bf16, fp16"},
      {"eval-every", "0", T::Int, 0, "", "", "evaluate every N steps (0: at the end only)"},
      {"save-every", "0", T::Int, 0, "", "", "write checkpoint/ every N steps (0: on SIGUSR1 and at the end)"},
      {"device", "auto", T::Text, 0, "", "", "auto, cpu, cuda, cuda:N"},
      {"schedule", "linear", T::Choice, 0, "", "constant,linear,cosine", "constant (with warmup), linear, cosine"},
      {"warmup-steps", "0", T::Int, 0, "", "", "linear warmup steps"},
      {"weight-decay", "0", T::Real, 0, "", "", "AdamW weight decay"},
      {"max-grad-norm", "1", T::Real, 0, "", "", "gradient clipping (0: off)"},
      {"eval-batch-size", "16", T::Int, 1, "", "", "sequences per evaluation forward"},
      {"max-new-tokens", "256", T::Int, 1, "", "", "code tasks (MBPP, CruxEval): tokens generated per evaluation example"},
      {"max-train-examples", "0", T::Int, 0, "", "", "use the first N training examples (0: all)"},
      {"max-eval-examples", "0", T::Int, 0, "", "", "evaluate on the first N examples (0: all)"},
      {"eval-split", "", T::Text, 0, "", "",
       "splits evaluated at each evaluation, comma-separated; the first selects the kept adapter (default: GLUE "
       "holdout,dev, or dev when holdout = 0; story-names, synth-facts dev,test; code tasks test)"},
      {"holdout", "0.1", T::Fraction, 0, "", "",
       "GLUE: fraction of train held out as split 'holdout' to select on (dev is the reported split): a fixed "
       "subset, the same for every seed and max-train-examples; 0: none"},
      {"holdout-max", "1000", T::Int, 0, "", "",
       "GLUE: at most this many training examples held out (0: no cap); 1,000 as in Zhang et al. 2021 and "
       "Karimi Mahabadi et al. 2021, so that SST-2, QNLI, QQP and MNLI do not spend their evaluations on a "
       "selection split larger than dev",
       /*before_key=*/"0"},
      {"save-initial", "false", T::Bool, 0, "", "",
       "write RUN_DIR/initial/: the trainable parameters before step 1, the training items' token ids and each "
       "step's batch (bench/official_ref.py replays them)"},
      {"lopa-combine", "mul", T::Choice, 0, "lopa", "mul,add,max,concat", "LoPA: mul (Z_S ∘ sigmoid(u vᵀ)), add, max, concat"},
      {"encoder-pooling", "auto", T::Choice, 0, "lopa,idpg", "auto,first,mean,last",
       "encoder embedding: auto (the encoder family's rule: first token for BERT / RoBERTa / CodeBERT, the "
       "L2-normalised masked mean for CodeSage, the last real token for a decoder), first, mean (L2-normalised), "
       "last"},
      {"encoder-max-length", "512", T::Int, 8, "lopa,idpg", "",
       "encoder input tokens (special tokens included), truncated from the left as the official code does"},
      {"train-encoder", "false", T::Bool, 0, "lopa,idpg", "",
       "train the encoder too (needs encoder = DIR; saved as RUN_DIR/adapter/encoder/, an HF checkpoint)"},
      {"encoder-lr", "1e-5", T::Real, 0, "lopa,idpg", "", "peak learning rate of the encoder when train-encoder = true"},
      {"head-dim", "0", T::Int, 0, "lopa,idpg", "", "h of the LoPA/IDPG heads (0: LoPA H, IDPG 256)"},
      {"prompt-dropout", "0.1", T::Fraction, 0, "lopa,idpg", "", "dropout on the LoPA/IDPG head inputs"},
      {"prompt-init", "random", T::Choice, 0, "lopa,pt", "random,vocab,text",
       "Z_S init (PT, LoPA): random (N(0,1) as PEFT), vocab (random token embeddings), text"},
      {"prompt-init-text", "", T::Text, 0, "lopa,pt", "", "text whose token embeddings initialise Z_S (prompt-init = text)"},
      {"lora-alpha", "16", T::Real, 0, "lora", "", "LoRA alpha (scaling alpha/r)"},
      {"lora-dropout", "0.05", T::Fraction, 0, "lora", "", "LoRA dropout"},
      {"lora-targets", "q,k,v", T::Text, 0, "lora", "",
       "LoRA modules: comma list of module names (q_proj, c_attn, qkv_proj, dense, ...) or roles "
       "(q,k,v,o,gate,up,down,fc_in,fc_out), all-linear, or auto (the family's usual set)"},
      {"prefix-projection", "false", T::Bool, 0, "prefix", "",
       "prefix tuning: reparameterise through an MLP (PEFT prefix_projection)"},
      {"prefix-hidden", "0", T::Int, 0, "prefix", "", "prefix tuning MLP width (0: d)"},
      {"prompt-template", "", T::Text, 0, "", "", "override the task's prompt template ({field} placeholders; \\n escapes)"},
      {"target-template", "", T::Text, 0, "", "", "override the task's target template"},
      {"verbalizers", "", T::Text, 0, "", "", "override GLUE verbalizers: one word per label, '|'-separated"},
      {"skip-bad-rows", "false", T::Bool, 0, "", "", "skip malformed data rows instead of failing"},
  };
  return keys;
}

// nullptr when `name` is not a training key.
inline const TrainKey* find_train_key(const std::string& name) {
  for (const auto& k : train_keys())
    if (name == k.name) return &k;
  return nullptr;
}

// How a value is read, shared by both consumers so that they accept the same texts (each words its
// own errors). Base-10 integer / finite number filling the whole text.
inline bool parse_key_int(const std::string& v, long long& out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(v.c_str(), &end, 10);
  // The whole string, not up to its first NUL: "\0" + "3" is not a number.
  return errno == 0 && end == v.c_str() + v.size() && end != v.c_str();
}

inline bool parse_key_real(const std::string& v, double& out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(v.c_str(), &end);
  return errno == 0 && end == v.c_str() + v.size() && end != v.c_str() && std::isfinite(out);
}

// "" reads as false: an INI line `skip-bad-rows =` turns the flag off.
inline bool parse_key_bool(const std::string& v, bool& out) {
  const bool yes = v == "true" || v == "1" || v == "yes" || v == "on";
  const bool no = v == "false" || v == "0" || v == "no" || v == "off" || v.empty();
  out = yes;
  return yes || no;
}

}  // namespace lopa
