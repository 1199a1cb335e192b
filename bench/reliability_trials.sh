#!/usr/bin/env bash
# Issue 18's trials, rerun after the fixes: SIGKILL at random moments of a small `lopa train` run,
# then a rerun that resumes (rows lost or duplicated in /train/step, the final status, the adapter
# against an uninterrupted run, byte for byte); a rank killed in a 2-rank job (how the survivor ends,
# what the log says, how far it covers the checkpoint, the resumed adapter); a checkpoint on a full
# disk (/dev/full, and a small tmpfs when mounting is allowed). Prints one line per trial and totals.
#
#   bench/reliability_trials.sh [KILL_TRIALS=10] [DEAD_RANK_TRIALS=3] [DISK_TRIALS=2]
# Environment: LOPA (default build/bin/lopa), LOPA_MODEL (default ../shared/models/stories260K), WORK.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
LOPA=${LOPA:-$here/build/bin/lopa}
MODEL=${LOPA_MODEL:-$here/../shared/models/stories260K}
KILLS=${1:-10}; DEAD=${2:-3}; DISK=${3:-2}
WORK=${WORK:-$(mktemp -d /tmp/lopa-reliability.XXXXXX)}
STEPS=${STEPS:-120}
PY=${PYTHON:-/usr/bin/python3}  # with h5py (Debian python3-h5py)
MPIRUN="mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) -x OMP_NUM_THREADS=1"
args=(train --model "$MODEL" --task story-names --method pt --num-virtual-tokens 4 --batch-size 8 --max-length 64
      --max-train-examples 64 --max-eval-examples 16 --eval-batch-size 16 --prompt-init vocab --lr 0.03
      --device cpu --max-steps "$STEPS" --save-every 5)

h5() {  # h5 RUN_DIR: "status rows unique first last error"
  "$PY" - "$1/metrics.h5" <<'PY'
import h5py, sys
try:
    f = h5py.File(sys.argv[1], "r")
except Exception as e:
    print("unreadable 0 0 0 0 -"); sys.exit()
a = lambda k: (lambda v: v.decode() if isinstance(v, bytes) else str(v))(f.attrs.get(k, ""))
s = [int(x) for x in f["train/step"][:]]
print(a("status"), len(s), len(set(s)), s[0] if s else 0, s[-1] if s else 0, (a("error") or "-").replace(" ", "_")[:120])
PY
}
ckpt() { cat "$1/checkpoint/COMPLETE" 2>/dev/null || echo 0; }
adapter_sum() { cat "$1"/adapter/*.safetensors 2>/dev/null | sha256sum | cut -c1-16; }

echo "work: $WORK; lopa: $LOPA; $STEPS steps, checkpoint every 5"
# --- the uninterrupted references ---
"$LOPA" "${args[@]}" --out "$WORK/ref" > "$WORK/ref.log" 2>&1 || { echo "reference run failed"; cat "$WORK/ref.log"; exit 1; }
ref=$(adapter_sum "$WORK/ref")
t0=$(date +%s.%N); "$LOPA" "${args[@]}" --out "$WORK/ref-timing" > /dev/null 2>&1; t1=$(date +%s.%N)
dur=$("$PY" -c "print(max(1.0, $t1 - $t0))")
echo "reference: adapter $ref, $(h5 "$WORK/ref"), ${dur}s per run"

# --- SIGKILL trials ---
k_lost=0; k_dup=0; k_ok_status=0; k_same=0; k_cover=0; k_killed=0
for i in $(seq 1 "$KILLS"); do
  d="$WORK/kill$i"
  "$LOPA" "${args[@]}" --out "$d" > "$d.log" 2>&1 &
  pid=$!
  delay=$("$PY" -c "import random; random.seed($i); print(round(random.uniform(0.3, 0.9) * $dur, 2))")
  sleep "$delay"; kill -9 "$pid" 2>/dev/null && k_killed=$((k_killed + 1)); wait "$pid" 2>/dev/null
  c=$(ckpt "$d"); read -r st rows uniq _ _ _ <<< "$(h5 "$d")"
  cover=$([ "$rows" -ge "$c" ] && echo yes || echo no); [ "$cover" = yes ] && k_cover=$((k_cover + 1))
  "$LOPA" "${args[@]}" --out "$d" >> "$d.log" 2>&1; rc=$?
  read -r st2 rows2 uniq2 _ _ _ <<< "$(h5 "$d")"
  lost=$((STEPS - uniq2)); dup=$((rows2 - uniq2)); sum=$(adapter_sum "$d")
  k_lost=$((k_lost + lost)); k_dup=$((k_dup + dup))
  [ "$st2" = completed ] && [ $rc = 0 ] && k_ok_status=$((k_ok_status + 1))
  [ "$sum" = "$ref" ] && k_same=$((k_same + 1))
  echo "kill $i: at ${delay}s checkpoint $c, log then $st with $rows rows (covers: $cover); rerun rc $rc: $st2, $rows2 rows, lost $lost, duplicated $dup, adapter $([ "$sum" = "$ref" ] && echo identical || echo DIFFERENT)"
done
[ "$KILLS" -gt 0 ] && echo "KILL TOTAL: $KILLS trials ($k_killed killed mid-run): rows lost $k_lost, duplicated $k_dup; log covered the checkpoint $k_cover/$KILLS; completed after rerun $k_ok_status/$KILLS; adapters identical $k_same/$KILLS"

# --- a rank killed in a 2-rank (dp = 2) job ---
if [ "$DEAD" -gt 0 ]; then
  $MPIRUN -np 2 "$LOPA" "${args[@]}" --out "$WORK/ref2" > "$WORK/ref2.log" 2>&1 || { echo "2-rank reference failed"; tail "$WORK/ref2.log"; }
  ref2=$(adapter_sum "$WORK/ref2")
  d_failed=0; d_cover=0; d_same=0; d_ok=0
  for i in $(seq 1 "$DEAD"); do
    d="$WORK/dead$i"
    $MPIRUN -np 2 "$LOPA" "${args[@]}" --out "$d" > "$d.log" 2>&1 &
    job=$!
    for _ in $(seq 1 600); do [ -f "$d/checkpoint/COMPLETE" ] && break; sleep 0.05; done
    sleep "0.$((RANDOM % 9 + 1))"
    # world rank 1, found by the rank Open MPI puts in each process's environment.
    victim=""
    for p in $(pgrep -f "$LOPA train.*--out $d\$"); do
      tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
    done
    t0=$(date +%s.%N); [ -n "$victim" ] && kill -9 "$victim"; wait "$job"; rc=$?; t1=$(date +%s.%N)
    c=$(ckpt "$d"); read -r st rows _ _ _ err <<< "$(h5 "$d")"
    [ "$st" = failed ] && d_failed=$((d_failed + 1)); [ "$rows" -ge "$c" ] && d_cover=$((d_cover + 1))
    $MPIRUN -np 2 "$LOPA" "${args[@]}" --out "$d" >> "$d.log" 2>&1; rc2=$?
    read -r st2 rows2 uniq2 _ _ _ <<< "$(h5 "$d")"; sum=$(adapter_sum "$d")
    [ "$st2" = completed ] && [ "$uniq2" = "$STEPS" ] && [ "$rows2" = "$STEPS" ] && d_ok=$((d_ok + 1))
    [ "$sum" = "$ref2" ] && d_same=$((d_same + 1))
    echo "dead rank $i: job ended rc $rc in $("$PY" -c "print(round($t1 - $t0, 2))")s; log $st ($err), $rows rows, checkpoint $c; rerun rc $rc2: $st2, $rows2 rows ($uniq2 distinct); adapter $([ "$sum" = "$ref2" ] && echo identical || echo DIFFERENT)"
  done
  echo "DEAD-RANK TOTAL: $DEAD trials: log marked failed $d_failed/$DEAD; log covered the checkpoint $d_cover/$DEAD; complete log after rerun $d_ok/$DEAD; adapters identical $d_same/$DEAD"
fi

# --- full disk while checkpointing ---
if [ "$DISK" -gt 0 ]; then
  f_ok=0
  for i in $(seq 1 "$DISK"); do
    d="$WORK/disk$i"; mkdir -p "$d/checkpoint"
    how="/dev/full"
    if [ $((i % 2)) = 0 ] && mount -t tmpfs -o size=8k tmpfs "$d/checkpoint" 2> /dev/null; then how="tmpfs 8k"; else ln -s /dev/full "$d/checkpoint/rank0.pt.tmp"; fi
    "$LOPA" "${args[@]}" --out "$d" > "$d.log" 2>&1; rc=$?
    read -r st rows _ _ _ err <<< "$(h5 "$d")"
    tmps=$(find "$d" -name '*.tmp' | wc -l); lines=$(grep -c "write failed" "$d.log")
    abrt=$(grep -c "c10::Error\|terminate called" "$d.log")
    [ $rc = 1 ] && [ "$st" = failed ] && [ "$tmps" = 0 ] && [ "$lines" = 1 ] && [ "$abrt" = 0 ] && f_ok=$((f_ok + 1))
    echo "disk $i ($how): rc $rc, log $st ($err), temporaries left $tmps, error lines $lines, LibTorch traces $abrt"
    [ "$how" = "tmpfs 8k" ] && umount "$d/checkpoint"
  done
  echo "DISK TOTAL: $DISK trials: loud and clean $f_ok/$DISK"
fi
