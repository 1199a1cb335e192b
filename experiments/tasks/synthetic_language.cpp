#include "experiments/tasks/synthetic_language.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "runtime/base/error.h"

namespace lopa::synth {

uint64_t SplitMix64::next() {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // values at or past it would bias the modulo
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

namespace {

// Filler: subject-verb number agreement is the structure a model must learn beyond the facts.
const std::vector<std::string> kAdjectives = {"small", "big", "old", "young", "happy"};
const std::vector<std::string> kNouns = {"dog", "cat", "bird", "frog", "duck", "goat"};  // plural: + "s"
const std::vector<std::string> kVerbs = {"run", "jump", "sleep", "sing", "swim"};        // singular: + "s"
const std::vector<std::string> kAdverbs = {"home", "fast", "now", "here", "today"};

std::vector<Relation> relations() {
  return {
      {"colour", {"red", "blue", "green", "yellow"}, {"{n} likes {v} .", "the colour of {n} is {v} .", "{n} wears {v} ."}},
      {"pet", {"cat", "dog", "fish", "bird"}, {"{n} has a {v} .", "the pet of {n} is a {v} .", "{n} feeds the {v} ."}},
      {"home", {"north", "south", "east", "west"},
       {"{n} lives in the {v} .", "the home of {n} is the {v} .", "{n} walks to the {v} ."}},
  };
}

std::string replace(std::string s, const std::string& key, const std::string& by) {
  const auto at = s.find(key);
  if (at != std::string::npos) s.replace(at, key.size(), by);
  return s;
}

std::string filler_sentence(SplitMix64& rng) {
  const bool plural = rng.below(2);
  const auto& adj = kAdjectives[rng.below(kAdjectives.size())];
  const auto& noun = kNouns[rng.below(kNouns.size())];
  const auto& verb = kVerbs[rng.below(kVerbs.size())];
  const auto& adv = kAdverbs[rng.below(kAdverbs.size())];
  return "the " + adj + " " + noun + (plural ? "s " : " ") + verb + (plural ? " " : "s ") + adv + " .";
}

}  // namespace

World make_world(int num_people, uint64_t seed) {
  LOPA_CHECK(num_people > 0 && num_people <= 400, "synthetic world: num_people must be in 1..400");
  World w;
  w.seed = seed;
  w.relations = relations();
  // Names: consonant-vowel-consonant-vowel pseudo-words, distinct and never an English word of the lexicon.
  const std::string consonants = "bdfgklmnprstvz", vowels = "aeiou";
  SplitMix64 rng(seed);
  std::set<std::string> taken;
  for (const auto& r : w.relations) taken.insert(r.values.begin(), r.values.end());
  while (static_cast<int>(w.people.size()) < num_people) {
    std::string n;
    for (int k = 0; k < 2; ++k) {
      n += consonants[rng.below(consonants.size())];
      n += vowels[rng.below(vowels.size())];
    }
    if (taken.insert(n).second) w.people.push_back(n);
  }
  w.facts.assign(num_people, std::vector<int>(w.relations.size()));
  for (auto& f : w.facts)
    for (size_t r = 0; r < w.relations.size(); ++r)
      f[r] = static_cast<int>(rng.below(w.relations[r].values.size()));
  return w;
}

std::string fact_sentence(const World& w, int person, int relation, int templ) {
  const auto& r = w.relations.at(relation);
  return replace(replace(r.templates.at(templ), "{n}", w.people.at(person)), "{v}",
                 r.values.at(w.facts.at(person).at(relation)));
}

std::string corpus_document(const World& w, uint64_t seed, uint64_t index) {
  // One generator per document: any document can be made without the ones before it.
  SplitMix64 rng(seed ^ (0xD1B54A32D192ED03ull * (index + 1)));
  std::ostringstream out;
  if (rng.below(5) == 0) {
    const auto n = 2 + rng.below(2);
    for (uint64_t i = 0; i < n; ++i) out << (i ? " " : "") << filler_sentence(rng);
    return out.str();
  }
  const int person = static_cast<int>(rng.below(w.people.size()));
  std::vector<int> rel(w.relations.size());
  for (size_t i = 0; i < rel.size(); ++i) rel[i] = static_cast<int>(i);
  for (size_t i = rel.size(); i > 1; --i) std::swap(rel[i - 1], rel[rng.below(i)]);  // Fisher-Yates
  const auto n = 2 + rng.below(2);  // 2 or 3 distinct facts
  for (uint64_t i = 0; i < n; ++i) {
    const int r = rel[i];
    const int t = static_cast<int>(rng.below(w.relations[r].templates.size()));
    out << (i ? " " : "") << fact_sentence(w, person, r, t);
  }
  // Sometimes a filler sentence follows, so facts and filler share contexts.
  if (rng.below(4) == 0) out << " " << filler_sentence(rng);
  return out.str();
}

std::vector<std::string> lexicon(const World& w) {
  std::set<std::string> words(w.people.begin(), w.people.end());
  for (const auto& r : w.relations) {
    words.insert(r.name);
    words.insert(r.values.begin(), r.values.end());
    for (const auto& t : r.templates) {
      std::istringstream in(t);
      for (std::string tok; in >> tok;)
        if (tok != "{n}" && tok != "{v}") words.insert(tok);
    }
  }
  words.insert("the");
  for (const auto& a : kAdjectives) words.insert(a);
  for (const auto& n : kNouns) words.insert(n), words.insert(n + "s");
  for (const auto& v : kVerbs) words.insert(v), words.insert(v + "s");
  for (const auto& a : kAdverbs) words.insert(a);
  return {words.begin(), words.end()};
}

}  // namespace lopa::synth
