// The paper's figures from a Report, drawn by gnuplot into one SVG (or PNG when the file name ends in
// .png) with three panels: metric vs prompt length m per method, metric vs trainable parameters
// (log x), and training-loss curves. Each panel has axes, labels and a legend.
#pragma once

#include <string>

namespace lopa::results {

struct Report;

// The gnuplot script (data inline, no temporary files) that render_plots runs; exposed for tests.
std::string plot_script(const Report& report, const std::string& out_file);

// Renders to out_file by running `gnuplot`. Build the report with ReportOptions::with_train = true
// for the loss panel. Throws lopa::Error when gnuplot is missing or fails.
void render_plots(const Report& report, const std::string& out_file);

}  // namespace lopa::results
