// The synthetic language of the embedded default (`lopa pretrain`, `lopa demo`): a small world of
// invented people, each with one value for each of three relations (colour, pet, home), told in
// templated English-like sentences, plus filler sentences with subject-verb number agreement.
// Everything is generated from fixed seeds with our own PRNG (splitmix64), so the corpus, the facts
// and the tokenizer built from the lexicon are byte-identical on every machine and LibTorch build.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa::synth {

// splitmix64 (Steele, Lea, Flood 2014): a tiny PRNG whose output is fixed by its definition.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n), n > 0 (rejection sampling, no modulo bias)
};

struct Relation {
  std::string name;                   // "colour", "pet", "home": the word the task names it by
  std::vector<std::string> values;    // 4 values, each one word
  std::vector<std::string> templates; // pretraining sentences, "{n}" the person, "{v}" the value
};

// The world: people, relations and every person's value of every relation.
struct World {
  uint64_t seed = 0;
  std::vector<std::string> people;       // invented one-word names ("kalo", "mibe", ...)
  std::vector<Relation> relations;       // colour, pet, home
  std::vector<std::vector<int>> facts;   // facts[person][relation] = value index
};

// The default world of the demo: 96 people (seed 7). `num_people` <= 400.
World make_world(int num_people = 96, uint64_t seed = 7);

// The fact sentence `templ` of relation r filled in for `person` ("kalo likes red .").
std::string fact_sentence(const World& w, int person, int relation, int templ);

// One pretraining document, the `index`-th of the stream with `seed`: a short biography of one
// person (2 to 4 of their facts, each in a random template, in random order), or, one time in
// five, 2 to 3 filler sentences ("the small dogs run home ."). Sentences end with " ." and are
// separated by spaces; no document holds a newline.
std::string corpus_document(const World& w, uint64_t seed, uint64_t index);

// Every word the corpus (and so the task) can contain (names, relation words, values, template and
// filler words, punctuation), sorted: the tokenizer gives each one its own token.
std::vector<std::string> lexicon(const World& w);

}  // namespace lopa::synth
