#include "experiments/tasks/synthetic_task.h"

#include <algorithm>

#include "runtime/base/error.h"

namespace lopa {

const synth::World& synth_world() {
  static const synth::World w = synth::make_world();
  return w;
}

const std::vector<std::string>& synth_facts_labels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> v;
    for (const auto& r : synth_world().relations) v.insert(v.end(), r.values.begin(), r.values.end());
    return v;
  }();
  return labels;
}

std::vector<std::string> synth_facts_targets() {
  std::vector<std::string> t;
  for (const auto& l : synth_facts_labels()) t.push_back(" " + l);
  return t;
}

Dataset load_synth_facts(const std::string& split) {
  const auto& w = synth_world();
  int begin = 0, end = 0;
  uint64_t seed = 0;
  if (split == "train") begin = 0, end = 48, seed = 11;
  else if (split == "dev") begin = 48, end = 72, seed = 22;
  else if (split == "test") begin = 72, end = 96, seed = 33;
  else fail("synth-facts: unknown split '", split, "' (train, dev, test)");
  LOPA_CHECK(static_cast<int>(w.people.size()) >= end, "synth-facts: the world has too few people");
  std::vector<std::pair<int, int>> pairs;  // (person, relation)
  for (int p = begin; p < end; ++p)
    for (int r = 0; r < static_cast<int>(w.relations.size()); ++r) pairs.emplace_back(p, r);
  synth::SplitMix64 rng(seed);
  for (size_t i = pairs.size(); i > 1; --i) std::swap(pairs[i - 1], pairs[rng.below(i)]);
  Dataset d;
  d.task = kSynthFactsTask;
  d.split = split;
  int64_t offset = 0;  // index of a relation's first value in synth_facts_labels()
  std::vector<int64_t> first(w.relations.size());
  for (size_t r = 0; r < w.relations.size(); ++r) first[r] = offset, offset += w.relations[r].values.size();
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [p, r] = pairs[i];
    const auto& rel = w.relations[r];
    Example ex;
    ex.id = str("synth-", split, "-", i);
    ex.row = static_cast<int64_t>(i);
    ex.fields["person"] = w.people[p];
    ex.fields["relation"] = rel.name;
    ex.fields["value"] = rel.values[w.facts[p][r]];
    ex.label = ex.fields["value"];
    ex.label_index = first[r] + w.facts[p][r];
    d.examples.push_back(std::move(ex));
  }
  return d;
}

std::string synth_facts_prompt(const Example& ex) { return ex.fields.at("person") + " " + ex.fields.at("relation"); }

}  // namespace lopa
