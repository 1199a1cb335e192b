// CruxEval (facebookresearch/cruxeval, cruxeval/cruxeval.jsonl: code, input, output, id) as two tasks:
// cruxeval-o (predict the output of f on the input) and cruxeval-i (predict an input giving the output).
//
// Split (recorded): the 800 samples, in file order, are permuted by a Fisher-Yates shuffle driven by
// splitmix64(seed) — for i = n-1 down to 1: j = next() % (i + 1), swap(a[i], a[j]) — where
// next() is splitmix64: state += 0x9E3779B97F4A7C15; z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
// z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31); with the initial state = seed.
// "train" = the first 400 permuted samples, "test" = the other 400 (both listed in file order);
// "all" = all 800. The recorded seed is kCruxEvalSplitSeed = 1234; write_cruxeval_split writes the ids.
//
// Scoring follows the official harness (evaluation/utils_general.py): program = code +
// "\nassert <output> == <g>", where g is the predicted output (O) or "f(<predicted input>)" (I).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

constexpr uint64_t kCruxEvalSplitSeed = 1234;
constexpr int64_t kCruxEvalTrainSize = 400;

std::string cruxeval_file(const std::string& data_dir);
// Indices (into file order, ascending) of `split` ("train", "test", "all") for n samples.
std::vector<int64_t> cruxeval_split_indices(int64_t n, const std::string& split, uint64_t seed);
Dataset load_cruxeval(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                      const LoadOptions& opts);
// Writes {"seed": S, "train": [ids...], "test": [ids...]} as JSON.
void write_cruxeval_split(const std::string& data_dir, uint64_t seed, const std::string& out_path);

// The official post-processing of a prediction, extended to bare expressions:
//   text after "[ANSWER]" (if present), before "[/ANSWER]" (if present), stripped;
//   when it is an assertion ("assert ..."): O keeps the part after the first "==", I the part before it
//   with "assert" removed (so "f(...)"), as the official output_/input_prediction.py do;
//   I: a bare input "x, y" becomes "f(x, y)"; a prediction already written "f(...)" stays as is.
std::string cruxeval_postprocess(const std::string& prediction, bool input_mode);
// The program checking one post-processed prediction, or "" when the official harness rejects it
// without running (O: the prediction contains "f(<input>)"; I: it does not call f).
std::string cruxeval_program(const Example& ex, const std::string& processed, bool input_mode);

}  // namespace lopa
