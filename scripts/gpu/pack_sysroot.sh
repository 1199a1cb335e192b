#!/usr/bin/env bash
# Run HERE after fetch_debs.sh: unpacks .gpu/debs into one sysroot, drops what a build on the device
# never reads (static libraries, documentation, the Boost headers that program_options does not
# include: 162 of Boost's 169 MB) and packs it as .gpu/sysroot.tar.xz, so that the debs, the fixtures
# and the working tree fit the device tool's 64 MiB together. scripts/gpu/device.sh unpacks it there.
set -euo pipefail
cd "$(dirname "$0")/../.."
SYS=$(mktemp -d)
trap 'rm -rf "$SYS"' EXIT
for f in .gpu/debs/*.deb; do dpkg -x "$f" "$SYS"; done
find "$SYS" -name '*.a' -delete
rm -rf "$SYS/usr/share/doc" "$SYS/usr/share/man" "$SYS/usr/share/lintian"
# The Boost headers the build includes: program_options (apps/options.h, cluster/sweep_spec.cpp),
# listed by the preprocessor against the sysroot's own copy.
printf '#include <boost/program_options.hpp>\n' |
  g++ -std=c++17 -I "$SYS/usr/include" -H -fsyntax-only -x c++ - 2>&1 |
  grep -o "$SYS/usr/include/boost/[^ ]*" | sort -u > "$SYS/keep"
[[ -s $SYS/keep ]] || { echo "pack_sysroot.sh: no Boost header found in the sysroot" >&2; exit 1; }
find "$SYS/usr/include/boost" -type f | sort | comm -23 - "$SYS/keep" | xargs rm -f
find "$SYS/usr/include/boost" -type d -empty -delete
rm "$SYS/keep"
tar -C "$SYS" -cJf .gpu/sysroot.tar.xz .
echo "pack_sysroot.sh: .gpu/sysroot.tar.xz $(du -h .gpu/sysroot.tar.xz | cut -f1) ($(grep -c . <(find "$SYS/usr/include/boost" -type f)) Boost headers kept)"
