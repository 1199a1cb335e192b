// synth-facts: the downstream task of the embedded default, over the synthetic world of
// synthetic_language.h. An instance names a person and one of three relations (the rule that
// applies to this instance) and asks for that person's value:
//   "kalo pet"  ->  " dog"
// The FM knows every person's facts, but only as the corpus tells them ("the pet of kalo is a dog .",
// "kalo has a dog ."); it has never seen this terse form, so unadapted it answers below chance (the
// demo's default FM: a few percent on dev). A method must learn to ask the
// frozen FM in its own terms, and which fact to retrieve depends on the instance's relation. The
// form uses only words the corpus contains: a word the FM never saw keeps its random embedding, and
// a prompt cannot undo that (a "question : ... ? answer :" form left every prompt method near 25%).
// The candidates are all 12 values of the three relations, so chance is 1/12; knowing only which
// relation is asked gives 1/4; above that, the FM's pretrained knowledge of the person is needed.
// Splits are disjoint in people: train people 0-47 (144 instances), dev 48-71 (72), test 72-95 (72),
// so a method cannot memorise answers, only learn to ask the frozen FM.
#pragma once

#include <string>
#include <vector>

#include "experiments/tasks/synthetic_language.h"
#include "experiments/tasks/task.h"

namespace lopa {

inline const char* kSynthFactsTask = "synth-facts";

// Fields of each Example: person, relation, value; label = the value word, label_index =
// its index in synth_facts_labels(); id "synth-<split>-<n>". Order shuffled with a fixed seed.
Dataset load_synth_facts(const std::string& split);
// The 12 candidate answers (values of every relation, relation by relation) and their targets (" red").
const std::vector<std::string>& synth_facts_labels();
std::string synth_facts_prompt(const Example& ex);
std::vector<std::string> synth_facts_targets();

// The world the task and the demo's FM share (synth::make_world() with its defaults).
const synth::World& synth_world();

}  // namespace lopa
