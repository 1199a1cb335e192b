// MBPP in the MBXP/mxeval layout (fields task_id, prompt, canonical_solution, entry_point, test) with
// the LoPA paper's 487/487 split: split "train" = mbpp/mbpp_train_release_v1.jsonl (MBPP/1-487),
// "test" = mbpp/mbpp_test_release_v1.jsonl (MBPP/488-974), "all" = mbpp/mbpp_release_v1.jsonl.
// (This is the LoPA repository's split, not the original 11-510 test split of google-research MBPP.)
// Scoring follows mxeval's check_correctness_python: program = prompt + completion + test +
// "\ncheck(<entry_point>)", run with python; passed when it exits with status 0.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

std::string mbpp_file(const std::string& data_dir, const std::string& split);
Dataset load_mbpp(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts);

// Stop sequences for a completion that continues the function's prompt: any top-level statement
// ends the function ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\nassert ", "\n```", ...).
const std::vector<std::string>& mbpp_stop_sequences();
// Post-processing of a raw generated completion (as LoPA's cleanup_mbpp_predictions.py does before
// mxeval): cut at the first stop sequence, then keep the function body (the lines up to the first
// non-empty line that starts at column 0).
std::string mbpp_postprocess(const std::string& completion);
// The program mxeval runs for one completion.
std::string mbpp_program(const Example& ex, const std::string& completion);

// Upstream defects of the MBXP conversion: tasks whose canonical solution fails its own test under
// mxeval's program (prompt + canonical_solution + test + check(entry_point)) with Python 3.11,
// sandbox or not. task_id -> cause. Found by running every canonical solution (tests/experiments).
const std::map<std::string, std::string>& mbpp_known_defects();

}  // namespace lopa
