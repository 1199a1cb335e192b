// story-names: a small in-domain classification task for story-trained FMs (stories260K), generated
// deterministically by code (no external data). Each example is one TinyStories-style sentence that
// mentions one child; the prompt names two children and the FM must pick the one in the sentence:
//   "Lily saw a big red dog in the garden.\nWho is in the story, Tom or Lily? Answer:"  ->  " Lily"
// Both names appear in the prompt, so copying either is not enough; chance is 50%. Registered in the
// task table (task.cpp) as a Generated task.
// Splits: train (2000), dev (400), test (400), each from its own fixed seed; labels "0"/"1" = the
// position of the right name among the two options.
#pragma once

#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

inline const char* kStoryNamesTask = "story-names";

// Fields of each Example: sentence, option0, option1, name; label "0" | "1"; id "story-<split>-<n>".
Dataset load_story_names(const std::string& split);
// The prompt text of an example and its two candidate targets (" <option0>", " <option1>").
std::string story_names_prompt(const Example& ex);
std::vector<std::string> story_names_targets(const Example& ex);

}  // namespace lopa
