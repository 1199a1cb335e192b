#!/usr/bin/env bash
# Times `lopa report` over 1,000 generated runs (target: < 10 s), table only and with --plot.
# Usage: bench/bench_report.sh [BUILD_DIR=build] [RUNS=1000]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-1000}
ROOT=$(mktemp -d /tmp/lopa-bench-report-XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
"$BUILD/bin/bench_report" "$ROOT/runs" "$RUNS" 500
for fmt in md latex; do
  t0=$(date +%s%N)
  "$BUILD/bin/lopa" report --root "$ROOT/runs" --format "$fmt" > "$ROOT/out.$fmt"
  t1=$(date +%s%N)
  echo "{\"bench\": \"lopa report\", \"runs\": $RUNS, \"format\": \"$fmt\", \"seconds\": $(( (t1 - t0) / 1000000 ))e-3, \"target_s\": 10}"
done
t0=$(date +%s%N)
"$BUILD/bin/lopa" report --root "$ROOT/runs" --plot "$ROOT/fig.svg" > /dev/null 2>&1
t1=$(date +%s%N)
echo "{\"bench\": \"lopa report --plot\", \"runs\": $RUNS, \"seconds\": $(( (t1 - t0) / 1000000 ))e-3, \"svg_bytes\": $(stat -c %s "$ROOT/fig.svg")}"
