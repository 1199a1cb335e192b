#include "experiments/tasks/in_domain_task.h"

#include <random>

#include "runtime/base/error.h"

namespace lopa {

namespace {
const std::vector<std::string> kNames = {"Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna",
                                         "Tim",  "Lucy", "Jack", "Amy", "Bob", "Kate", "Jill", "Mark"};
// {n} is the child; every sentence is plain TinyStories vocabulary.
const std::vector<std::string> kSentences = {
    "{n} went to the park to play with the ball.",
    "{n} saw a big red dog in the garden.",
    "{n} liked to eat cake with mom.",
    "One day, {n} found a shiny stone near the tree.",
    "{n} was happy because the sun was warm.",
    "{n} played with a toy car all day.",
    "{n} helped dad clean the big house.",
    "At night, {n} looked at the stars in the sky.",
    "{n} had a little cat that liked to sleep.",
    "{n} ran fast to catch the blue bird.",
    "Mom gave {n} a big hug and a kiss.",
    "{n} made a boat and put it in the water.",
};

std::string fill(const std::string& tmpl, const std::string& name) {
  auto out = tmpl;
  out.replace(out.find("{n}"), 3, name);
  return out;
}
}  // namespace

Dataset load_story_names(const std::string& split) {
  uint64_t seed = 0;
  int64_t n = 0;
  if (split == "train") seed = 101, n = 2000;
  else if (split == "dev") seed = 202, n = 400;
  else if (split == "test") seed = 303, n = 400;
  else fail("story-names: unknown split '", split, "' (train, dev, test)");
  // mt19937_64's output is fixed by the standard; indices by modulo keep the data identical everywhere.
  std::mt19937_64 rng(seed);
  Dataset d;
  d.task = kStoryNamesTask;
  d.split = split;
  for (int64_t i = 0; i < n; ++i) {
    const auto a = rng() % kNames.size();
    auto b = rng() % (kNames.size() - 1);
    if (b >= a) ++b;  // a different name
    const auto s = rng() % kSentences.size();
    const int64_t label = static_cast<int64_t>(rng() % 2);  // where the right name sits among the options
    Example ex;
    ex.id = str("story-", split, "-", i);
    ex.row = i;
    ex.fields["name"] = kNames[a];
    ex.fields["sentence"] = fill(kSentences[s], kNames[a]);
    ex.fields["option0"] = label == 0 ? kNames[a] : kNames[b];
    ex.fields["option1"] = label == 0 ? kNames[b] : kNames[a];
    ex.label = std::to_string(label);
    ex.label_index = label;
    d.examples.push_back(std::move(ex));
  }
  return d;
}

std::string story_names_prompt(const Example& ex) {
  return ex.fields.at("sentence") + "\nWho is in the story, " + ex.fields.at("option0") + " or " +
         ex.fields.at("option1") + "? Answer:";
}

std::vector<std::string> story_names_targets(const Example& ex) {
  return {" " + ex.fields.at("option0"), " " + ex.fields.at("option1")};
}

}  // namespace lopa
