// Tokenizer: Hugging Face tokenizer.json semantics (BPE with ByteLevel pre-tokenization as GPT-2,
// Llama 3 and Qwen; SentencePiece-style BPE with byte fallback as Llama 2), added/special tokens,
// and the BOS/EOS behaviour that tokenizer_config.json asks for.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lopa {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json.
  static Tokenizer from_dir(const std::string& dir);
  // Whether DIR has tokenizer files (checkpoints without them still work with token ids).
  static bool available(const std::string& dir);
  // Reads one tokenizer.json (and an optional tokenizer_config.json path, "" for none).
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json = "");

  // Like HF `tokenizer(text, add_special_tokens=...)`: with add_special_tokens the post-processor /
  // config decides BOS/EOS. Special-token strings inside `text` map to their ids.
  // Invalid UTF-8 in `text` is a lopa::Error. Thread-safe (the word cache is locked).
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = false) const;
  // The tokenizer.json decoder chain, like HF tokenizers' decode (transformers' optional
  // clean_up_tokenization_spaces is not applied). Ids without a token are skipped, as HF does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  int64_t vocab_size() const;  // including added tokens
  std::optional<int64_t> bos_id() const;
  std::optional<int64_t> eos_id() const;
  std::optional<int64_t> pad_id() const;
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
  std::unique_ptr<Impl> impl_;
};

}  // namespace lopa
