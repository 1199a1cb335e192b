#!/usr/bin/env bash
# Issue 17's gate table (lopa-diagnosis.md) from a `lopa demo` output directory: every LoPA, IDPG and PT
# run's gate saturation, head-output scale, instance variation and prompt norms on the first N dev
# instances, with Z_S at step 0 from one-step reruns (`lopa train --save-initial true`, about a second
# each, one at a time, nice 19).
#
#   lopa_diagnosis.sh DEMO_OUT [WORK] [N]
#     DEMO_OUT  the demo's --out (runs/{lopa,idpg,pt}/*, data/synth-facts/dev.jsonl)
#     WORK      where the step-0 reruns and gates.{md,json} go (default DEMO_OUT/diagnosis)
#     N         dev instances (default 72, the whole dev split)
#   ABLATE=METHOD=LR,... adds the inference-time ablations of the runs at those rates (below).
set -euo pipefail
demo=${1:?usage: lopa_diagnosis.sh DEMO_OUT [WORK] [N]}
work=${2:-$demo/diagnosis}
n=${3:-72}
root=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$work"
OMP_NUM_THREADS=1 nice -n 19 /usr/bin/python3 "$root/bench/lopa_gates.py" --root "$demo" --n "$n" \
  --lopa "${LOPA:-$root/build/bin/lopa}" --make-initial "$work/initial" --json "$work/gates.json" | tee "$work/gates.md"
# ABLATE=lopa=0.001,idpg=0.003,pt=0.03 (each method's selected rate): also the inference-time ablations of
# those runs (about 3 minutes on 2 cores: 1-second `lopa eval` calls, one at a time).
if [ -n "${ABLATE:-}" ]; then
  OMP_NUM_THREADS=1 nice -n 19 /usr/bin/python3 "$root/bench/lopa_gates.py" --root "$demo" --n "$n" \
    --lopa "${LOPA:-$root/build/bin/lopa}" --initial-root "$work/initial" --lr "$ABLATE" --ablate \
    --json "$work/ablations.json" | sed -n '/^Inference-time/,$p' | tee "$work/ablations.md"
fi
