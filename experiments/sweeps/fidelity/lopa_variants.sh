#!/usr/bin/env bash
# Issue 17's LoPA variants on the demo task (lopa-diagnosis.md): each variant is the demo's LoPA cell at
# one learning rate with a few keys changed, trained on the given seeds one run at a time (nice 19, one
# thread) and tabulated by `lopa report` with the demo's protocol (selected on dev, reported on test).
#
# Each variant gets its own report (lopa report keeps one configuration per method and task).
#
#   lopa_variants.sh DEMO_OUT OUT [SEEDS] [VARIANT...]
#     DEMO_OUT  a `lopa demo` output directory (its runs/lopa/*/config.ini at lr 0.001 is the base cell)
#     OUT       where the runs go: OUT/<variant>/<variant>-lr<lr>-s<seed>/ (a finished run is skipped)
#     SEEDS     comma list, default 0,1
#     VARIANT   name=KEY:VALUE,KEY:VALUE (default: the set below)
#   METHOD=pt BASE_LR=0.03 takes another method's demo cell as the base (default lopa at 0.001);
#   LRS=0.0003,0.001,0.003 trains each variant at these rates (default the base's), and its report then
#   selects the rate on dev as the demo does (a variant may not set lr itself: use LRS).
set -euo pipefail
demo=${1:?usage: lopa_variants.sh DEMO_OUT OUT [SEEDS] [VARIANT...]}
out=${2:?usage: lopa_variants.sh DEMO_OUT OUT [SEEDS] [VARIANT...]}
seeds=${3:-0,1}
shift $(( $# < 3 ? $# : 3 ))
lopa=${LOPA:-$(cd "$(dirname "$0")/../../.." && pwd)/build/bin/lopa}
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  variants=(
    "base="                                             # the demo's cell itself (vocab init, r 2, mul, lr 0.001): reruns reproduce it?
    "init-random=prompt-init:random"                    # Z_S ~ N(0,1): the official code's PromptTuningInit.RANDOM
    "r8=rank:8"
    "add=lopa-combine:add"                              # Z = Z_S + u vᵀ (the NLU code's lopa-add): no gate
    "h256=head-dim:256"                                 # IDPG's head width
    "init-random-r8=prompt-init:random,rank:8"
  )
fi
method=${METHOD:-lopa}
base_lr=${BASE_LR:-0.001}
lrs=${LRS:-$base_lr}
base=$(grep -l "^lr = $base_lr\$" "$demo"/runs/"$method"/*/config.ini | head -1 || true)
[ -n "$base" ] || { echo "lopa_variants.sh: $demo/runs/$method: no run at lr $base_lr" >&2; exit 1; }
mkdir -p "$out"
for v in "${variants[@]}"; do
  name=${v%%=*}
  keys=${v#*=}
  for lr in ${lrs//,/ }; do
  for s in ${seeds//,/ }; do
    run=$out/$name/$name-lr$lr-s$s
    [ -f "$run/checkpoint/COMPLETE" ] && { echo "$name lr $lr s$s: done already"; continue; }
    mkdir -p "$out/$name"
    ini=$run.ini
    sed -e "s/^seed = .*/seed = $s/" -e "s/^lr = .*/lr = $lr/" "$base" > "$ini"
    IFS=',' read -ra kv <<< "$keys"
    for p in "${kv[@]}"; do
      [ -n "$p" ] || continue
      k=${p%%:*}; val=${p#*:}
      [ "$k" != lr ] || { echo "lopa_variants.sh: variant '$name' sets lr: give the rates with LRS" >&2; exit 1; }
      grep -q "^$k = " "$ini" || { echo "lopa_variants.sh: $base has no key '$k'" >&2; exit 1; }
      sed -i "s|^$k = .*|$k = $val|" "$ini"
    done
    start=$(date +%s)
    OMP_NUM_THREADS=1 nice -n 19 "$lopa" train --config "$ini" --out "$run" > "$run.log" 2>&1
    echo "$name lr $lr s$s: $(( $(date +%s) - start )) s; $(grep 'step 600 eval' "$run.log" | sed 's/lopa train: //' | tr '\n' ' ')"
  done
  done
done
# One report per variant: within a method's cell `lopa report` keeps only the best configuration.
for v in "${variants[@]}"; do
  name=${v%%=*}
  echo "== $name (${v#*=})"
  "$lopa" report --root "$out/$name" --select-by dev --report test | grep -E '^\| (LoPA|PT|IDPG)|on synth-facts: lr' || true
done
