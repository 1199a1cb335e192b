// Which source tree this program was built from: the commit recorded in every run log (the HDF5
// `git_sha` attribute) and printed by `lopa info`, so a result can be traced to its code.
#pragma once

namespace lopa {

// 12 hex digits of the commit, "-dirty" appended when tracked files differed from it at build time;
// "unknown" when the source was not a git checkout. Written by cmake/build_info.cmake at every build.
const char* build_git_sha();

}  // namespace lopa
