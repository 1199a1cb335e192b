// Tokenizer: Hugging Face tokenizer.json semantics (BPE with ByteLevel pre-tokenization as GPT-2,
// Llama 3, Qwen and RoBERTa; SentencePiece-style BPE with byte fallback as Llama 2; WordPiece with
// the BERT normalizer as BERT), added/special tokens, post-processors for single sequences and pairs,
// and the BOS/EOS behaviour that tokenizer_config.json asks for. A directory with only the slow files
// (vocab.json + merges.txt, or vocab.txt) gets the tokenizer transformers' converter would build.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lopa {

struct TokenizerJson;

// What HF's Encoding carries that a model needs: ids, token_type_ids, special_tokens_mask.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<uint8_t> special_tokens_mask;  // 1 where the post-processor added the token
};

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json; without tokenizer.json,
  // the slow files (from_slow_dir).
  static Tokenizer from_dir(const std::string& dir);
  // Builds the tokenizer from DIR's slow files as transformers' convert_slow_tokenizer does:
  // vocab.txt → BertConverter (WordPiece); vocab.json + merges.txt → RobertaConverter or GPT2Converter
  // (byte-level BPE), chosen by tokenizer_config.json's tokenizer_class, else config.json's
  // model_type, else the vocab (<s> </s> <mask> present: RoBERTa). Reads tokenizer_config.json,
  // special_tokens_map.json and added_tokens.json when present.
  static Tokenizer from_slow_dir(const std::string& dir);
  // Whether DIR has tokenizer files, fast or slow (checkpoints without them still work with token ids).
  static bool available(const std::string& dir);
  // Reads one tokenizer.json (and an optional tokenizer_config.json path, "" for none).
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json = "");

  // Like HF `tokenizer(text, add_special_tokens=...)`: with add_special_tokens the post-processor /
  // config decides BOS/EOS. Special-token strings inside `text` map to their ids.
  // Invalid UTF-8 in `text` is a lopa::Error. Thread-safe (the word cache is locked).
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = false) const;
  // Like HF `tokenizer.encode(text, pair, add_special_tokens)` (pair may be null): each sequence is
  // tokenized alone, then the post-processor joins them (RoBERTa `<s> A </s></s> B </s>`, BERT
  // `[CLS] A [SEP] B [SEP]` with type ids 0/1) and gives the type ids even without special tokens.
  Encoding encode_full(const std::string& text, const std::string* pair, bool add_special_tokens) const;
  Encoding encode_pair(const std::string& text, const std::string& pair, bool add_special_tokens = true) const {
    return encode_full(text, &pair, add_special_tokens);
  }
  // The tokenizer.json decoder chain, like HF tokenizers' decode (transformers' optional
  // clean_up_tokenization_spaces is not applied). Ids without a token are skipped, as HF does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  int64_t vocab_size() const;  // including added tokens
  std::optional<int64_t> bos_id() const;
  std::optional<int64_t> eos_id() const;
  std::optional<int64_t> pad_id() const;
  std::optional<int64_t> mask_id() const;  // <mask> / [MASK] where the config or the class names one
  bool adds_bos() const;  // whether encode(..., true) prepends BOS
  std::optional<int64_t> token_to_id(const std::string& token) const;
  std::string id_to_token(int64_t id) const;
  std::string describe() const;  // one line: model type, vocab size, special tokens (for `lopa info`)

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  // The loader shared by tokenizer.json and the slow files: `tj` as read, `config_text` the JSON text of
  // a tokenizer_config.json ("{}" for none), errors naming `path` / `config_path`.
  static Tokenizer build(TokenizerJson& tj, const std::string& path, const std::string& config_text,
                         const std::string& config_path);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lopa
