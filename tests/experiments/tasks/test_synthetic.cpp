// The synthetic language and synth-facts task: deterministic (pinned by golden digests), task labels
// equal the facts as the pretraining corpus states them (parsed from the text, not read from the
// World), splits disjoint in people; the lexicon tokenizer round-trips and gives one token a word.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "experiments/tasks/synthetic_language.h"
#include "experiments/tasks/synthetic_task.h"
#include "experiments/tasks/word_tokenizer.h"
#include "runtime/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace lopa;

namespace {
uint64_t fnv1a(const std::string& s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}
}  // namespace

TEST(SyntheticLanguage, SplitMixMatchesReference) {
  // splitmix64 reference outputs for seed 1234567 (from the published C implementation).
  synth::SplitMix64 r(1234567);
  EXPECT_EQ(r.next(), 6457827717110365317ull);
  EXPECT_EQ(r.next(), 3203168211198807973ull);
  EXPECT_EQ(r.next(), 9817491932198370423ull);
}

TEST(SyntheticLanguage, DeterministicAcrossCallsAndPinned) {
  const auto a = synth::make_world(), b = synth::make_world();
  ASSERT_EQ(a.people, b.people);
  ASSERT_EQ(a.facts, b.facts);
  EXPECT_EQ(a.people.size(), 96u);
  EXPECT_EQ(std::set<std::string>(a.people.begin(), a.people.end()).size(), 96u);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < 500; ++i) {
    const auto d = synth::corpus_document(a, 1, i);
    ASSERT_EQ(d, synth::corpus_document(b, 1, i));
    ASSERT_FALSE(d.empty());
    ASSERT_EQ(d.find('\n'), std::string::npos);
    h = fnv1a(d + "\n", h);
  }
  // Golden digest: any change to the world, the templates or the PRNG changes what the FM learns, and
  // must come with a new corpus version in experiments/pretrain.cpp (kCorpusVersion).
  EXPECT_EQ(h, 0x7d2ca6df204f6130ull) << std::hex << h;
  EXPECT_NE(synth::corpus_document(a, 2, 0) + synth::corpus_document(a, 2, 1),
            synth::corpus_document(a, 1, 0) + synth::corpus_document(a, 1, 1));
}

TEST(SyntheticTask, LabelsAgreeWithTheCorpusText) {
  // Facts as the corpus states them, parsed from sentences with every template of every relation.
  const auto& w = synth_world();
  std::map<std::pair<std::string, std::string>, std::set<std::string>> said;  // (person, relation) -> values
  const std::vector<std::pair<std::regex, std::string>> patterns = {
      {std::regex(R"((\w+) likes (\w+) \.)"), "colour"},        {std::regex(R"(the colour of (\w+) is (\w+) \.)"), "colour"},
      {std::regex(R"((\w+) wears (\w+) \.)"), "colour"},        {std::regex(R"((\w+) has a (\w+) \.)"), "pet"},
      {std::regex(R"(the pet of (\w+) is a (\w+) \.)"), "pet"}, {std::regex(R"((\w+) feeds the (\w+) \.)"), "pet"},
      {std::regex(R"((\w+) lives in the (\w+) \.)"), "home"},   {std::regex(R"(the home of (\w+) is the (\w+) \.)"), "home"},
      {std::regex(R"((\w+) walks to the (\w+) \.)"), "home"}};
  for (uint64_t i = 0; i < 20000; ++i) {
    const auto d = synth::corpus_document(w, 1, i);
    for (const auto& [re, rel] : patterns)
      for (std::sregex_iterator it(d.begin(), d.end(), re), end; it != end; ++it) {
        const std::string person = (*it)[1];
        if (person == "the") continue;  // "the small dog ..." is filler, "the colour of" is the other pattern
        said[{person, rel}].insert((*it)[2]);
      }
  }
  std::set<std::string> people_by_split[3];
  const char* splits[] = {"train", "dev", "test"};
  const size_t sizes[] = {144, 72, 72};
  const std::regex question(R"((\w+) (colour|pet|home))");  // "kalo pet"
  // Every word a prompt uses occurs in the corpus: a word the FM never saw keeps its random
  // embedding, and the task would test that, not whether a method can ask the FM.
  std::set<std::string> corpus_words;
  for (uint64_t i = 0; i < 20000; ++i) {
    std::istringstream in(synth::corpus_document(w, 1, i));
    for (std::string word; in >> word;) corpus_words.insert(word);
  }
  int64_t checked = 0;
  for (int s = 0; s < 3; ++s) {
    const auto d = load_synth_facts(splits[s]);
    ASSERT_EQ(d.examples.size(), sizes[s]) << splits[s];
    std::map<std::string, int> label_counts;
    for (const auto& ex : d.examples) {
      std::smatch m;
      const auto prompt = synth_facts_prompt(ex);
      ASSERT_TRUE(std::regex_match(prompt, m, question)) << prompt;
      const auto key = std::make_pair(m[1].str(), m[2].str());
      EXPECT_TRUE(corpus_words.count(m[1].str()) && corpus_words.count(m[2].str())) << prompt;
      ASSERT_TRUE(said.count(key)) << "the corpus never states the " << key.second << " of " << key.first;
      ASSERT_EQ(said[key].size(), 1u) << "the corpus contradicts itself about " << key.first;
      EXPECT_EQ(*said[key].begin(), ex.label) << ex.id;
      ASSERT_GE(ex.label_index, 0);
      EXPECT_EQ(synth_facts_labels().at(ex.label_index), ex.label);
      people_by_split[s].insert(m[1].str());
      ++label_counts[ex.label];
      ++checked;
    }
    // Every value occurs: a constant answer cannot reach the accuracy of the relation-aware 1/4.
    EXPECT_EQ(label_counts.size(), 12u) << splits[s];
    EXPECT_EQ(load_synth_facts(splits[s]).examples.at(5).id, d.examples.at(5).id);
  }
  EXPECT_EQ(checked, 288);
  for (int a = 0; a < 3; ++a)
    for (int b = a + 1; b < 3; ++b)
      for (const auto& p : people_by_split[a]) EXPECT_FALSE(people_by_split[b].count(p)) << p;
  EXPECT_EQ(synth_facts_targets().size(), 12u);
  EXPECT_THROW(load_synth_facts("validation"), std::exception);
}

TEST(WordTokenizer, RoundTripsAndGivesEachWordOneToken) {
  const auto& w = synth_world();
  const auto words = synth::lexicon(w);
  const auto files = make_word_tokenizer(words);
  EXPECT_EQ(files.tokenizer_json, make_word_tokenizer(words).tokenizer_json);  // deterministic
  const auto dir = fs::temp_directory_path() / ("lopa_wordtok_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_word_tokenizer(files, dir.string());
  const auto tok = Tokenizer::from_dir(dir.string());
  EXPECT_EQ(tok.vocab_size(), files.vocab_size);
  ASSERT_TRUE(tok.bos_id().has_value());
  EXPECT_EQ(*tok.bos_id(), 0);
  EXPECT_TRUE(tok.adds_bos());
  for (const auto& word : words) {
    EXPECT_EQ(tok.encode(word).size(), 1u) << word;
    EXPECT_EQ(tok.encode(" " + word).size(), 1u) << word;
  }
  for (uint64_t i = 0; i < 200; ++i) {
    const auto d = synth::corpus_document(w, 1, i);
    const auto ids = tok.encode(d);
    EXPECT_EQ(tok.decode(ids), d);
    const auto with_bos = tok.encode(d, true);
    ASSERT_EQ(with_bos.size(), ids.size() + 1);
    EXPECT_EQ(with_bos[0], 0);
  }
  for (const auto& ex : load_synth_facts("dev").examples) {
    const auto p = synth_facts_prompt(ex);
    EXPECT_EQ(tok.decode(tok.encode(p)), p);
    EXPECT_EQ(tok.encode(p).size(), 2u) << p;  // "N R": one token a word
  }
  // Text outside the lexicon still round-trips (byte-level base vocabulary).
  const std::string odd = "Zürich, 2024: naïve text\twith tabs\nand émojis 🙂!";
  EXPECT_EQ(tok.decode(tok.encode(odd)), odd);
  fs::remove_all(dir);
}
