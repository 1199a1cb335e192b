#!/usr/bin/env bash
# Issue 17, real data at CPU scale: PT, IDPG, LoPA (r 1 and 4), LoRA (r 4) and FFT on RTE (10 epochs) and
# SST-2 (1 epoch) with the decoder FM ../shared/models/glue-lm-8M. Each method's learning rate is probed on
# seed 0 with shorter runs (experiments/sweeps/fidelity/real-probe-{rte,sst2}.ini: RTE 3 epochs, SST-2 600
# steps), selected on the holdout split (never on dev) over every device's probe cells, then seeds 0, 1, 2
# run at full length at that lr and `lopa report --select-by holdout --report dev` prints the table (mean ±
# std over seeds, paired comparisons).
#
# usage: scripts/fidelity_real.sh          (from the repository root; roughly 15-20 h on 2 cores, see the note)
#        scripts/fidelity_real.sh archive  (only step 0b: copy the completed cells' logs into the archive)
#        scripts/fidelity_real.sh report   (only the pooled table of step 4, from the archives)
# env:   LOPA (default build/bin/lopa)   TASKS (default "rte sst2")   SEEDS (default "0, 1, 2")
#        JOBS (sweeps at once, default 2) NICE (default "nice -n 19"; empty: none)
#        PROBE (default 1; 0: skip step 1, select from the archived probe cells of every device)
#        DEVICE (default cpu): another device (cuda) runs the same plan under runs/fidelity-real-<device>
#        with the archive in experiments/sweeps/fidelity/results-<device>; its probe specs are the
#        committed ones with that device, fp32 (autocast = none: the CPU runs are fp32 too) and
#        CELL_JOBS (default 1) cells of each sweep at once (on one GPU, several processes at a time).
# Completed runs are kept: rerunning the script resumes where it stopped (a sweep never reruns a completed
# cell), so it can run in pieces. runs/ is not in git and a fresh machine starts without it, so each
# completed cell's run log (config.ini, metrics.h5, predictions.jsonl: what the sweep's status and
# `lopa report` read; no adapter, no checkpoint) is also copied to experiments/sweeps/fidelity/results/,
# which is committed; the script restores from there what runs/ lacks before it starts.
set -euo pipefail
# The whole script is one { ...; exit; } block: bash parses it before running any of it, so editing this
# file while a run of many hours is under way cannot change what that run does next.
{
cd "$(dirname "$0")/.."
LOPA=${LOPA:-build/bin/lopa}
DEVICE=${DEVICE:-cpu}
CELL_JOBS=${CELL_JOBS:-1}
SPECS=experiments/sweeps/fidelity
if [ "$DEVICE" = cpu ]; then
  OUT=runs/fidelity-real ARCHIVE=$SPECS/results PROBES=$SPECS
else
  OUT=runs/fidelity-real-${DEVICE//:/} ARCHIVE=$SPECS/results-${DEVICE//:/} PROBES=runs/fidelity-real-${DEVICE//:/}/specs
fi
TASKS=${TASKS:-rte sst2}
SEEDS=${SEEDS:-0, 1, 2}
NICE=${NICE-nice -n 19}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT/logs" "$OUT/specs"
if [ "$DEVICE" != cpu ]; then
  for t in $TASKS; do
    sed -e "s|^device = cpu\$|device = $DEVICE\nautocast = none|" -e "s|^root = runs/fidelity-real/|root = $OUT/|" \
        -e "s|^jobs = 1\$|jobs = $CELL_JOBS|" "$SPECS/real-probe-$t.ini" > "$PROBES/real-probe-$t.ini"
  done
fi

# 0a. Restore archived cells that runs/ lacks (a run directory with a log is left alone: it may be newer).
if [ -d "$ARCHIVE" ]; then
  (cd "$ARCHIVE" && find . -name metrics.h5 -printf '%h\n') | while read -r rel; do
    if [ ! -e "$OUT/$rel/metrics.h5" ]; then
      mkdir -p "$OUT/$rel" && cp "$ARCHIVE/$rel"/* "$OUT/$rel/"
    fi
  done
fi

# 0b. Copy every completed cell of the probe and final specs into the archive (run after each phase and at
#     exit, so that an interrupted session keeps what it finished).
archive() {
  local spec root
  for spec in "$PROBES"/real-probe-*.ini "$OUT"/specs/real-final-*.ini; do
    [ -e "$spec" ] || continue
    root=$(sed -n 's/^root = //p' "$spec")
    { "$LOPA" sweep status --spec "$spec" 2>/dev/null || true; } | awk '$2 == "completed" {print $1}' |
      while read -r cell; do
        local dst="$ARCHIVE/${root#"$OUT"/}/$cell"
        if [ -e "$dst/metrics.h5" ] && cmp -s "$root/$cell/metrics.h5" "$dst/metrics.h5"; then continue; fi
        mkdir -p "$dst"
        for f in config.ini metrics.h5 predictions.jsonl; do
          if [ -e "$root/$cell/$f" ]; then cp "$root/$cell/$f" "$dst/"; fi
        done
      done
  done
  return 0  # a status that cannot be read is no reason to stop the runs (set -e)
}
# 4. One table over every device's archive (the same protocol, fp32 everywhere), pooled over device and
#    autocast; each pooled cell names which seeds ran where.
pooled_report() {
  local a roots=()
  for a in "$SPECS"/results/final "$SPECS"/results-*/final; do if [ -d "$a" ]; then roots+=(--root "$a"); fi; done
  if [ "${#roots[@]}" -eq 0 ]; then echo "fidelity_real.sh: no final cells archived yet" >&2; return 1; fi
  "$LOPA" report "${roots[@]}" --merge-keys device,autocast --select-by holdout --report dev | tee "$OUT/final-report-pooled.md"
}
if [ "${1:-}" = archive ]; then archive; exit 0; fi
if [ "${1:-}" = report ]; then pooled_report; exit 0; fi
trap archive EXIT
# With autogroup scheduling (Linux's default for desktop and VM kernels) nice only ranks processes
# within their session's group: started under setsid, the cells still took half of the cores from an
# interactive build. Niceness of the whole group is set here too, when the script is to be nice.
if [ -n "$NICE" ] && [ -w /proc/self/autogroup ]; then echo 19 > /proc/$$/autogroup 2>/dev/null || true; fi

run_specs() {  # spec files on stdin, JOBS sweeps at a time; each sweep's output in $OUT/logs/<spec name>.log
  xargs -P "$JOBS" -I{} sh -c \
    "$NICE \"\$0\" sweep run --spec \"\$1\" > \"$OUT/logs/\$(basename \"\$1\" .ini).log\" 2>&1 || echo \"failed: \$1\"" \
    "$LOPA" {}
}

# 1. The learning-rate probe (seed 0, shorter runs). PROBE=0 skips it: step 2 then selects from the probe
#    cells already archived, on any device (on the CPU, the rest of the grid is 19 RTE cells, ~3 h).
if [ "${PROBE:-1}" != 0 ]; then
  for t in $TASKS; do echo "$PROBES/real-probe-$t.ini"; done | run_specs
fi

archive

# 2. Each report row's lr as selected on holdout; one final spec per (task, row): the probe spec with that
#    method, rank and lr fixed, full length, the seeds crossed.
for t in $TASKS; do
  # Every device's probe cells count (one protocol, fp32 everywhere; the CPU extended the GPU's grids):
  # this plan's and the other devices' archives, pooled over device and autocast. A cell that ran on
  # two devices is read once (the first in path order; `lopa report` lists the other).
  probe_roots=(--root "$OUT/probe/$t")
  for a in "$SPECS"/results/probe/$t "$SPECS"/results-*/probe/$t; do
    if [ -d "$a" ] && [ "$a" != "$ARCHIVE/probe/$t" ]; then probe_roots+=(--root "$a"); fi
  done
  "$LOPA" report "${probe_roots[@]}" --merge-keys device,autocast --select-by holdout --report dev > "$OUT/probe-$t.md"
  "$LOPA" report "${probe_roots[@]}" --merge-keys device,autocast --select-by holdout --report dev --format csv > "$OUT/probe-$t.csv"
  python3 - "$OUT/probe-$t.csv" "$PROBES/real-probe-$t.ini" "$t" "$SEEDS" "$OUT/specs" "$OUT" <<'PY'
import csv, re, sys
csv_path, probe, task, seeds, out, root = sys.argv[1:]
rows = list(csv.reader(l for l in open(csv_path) if l.strip()))
head = rows[0]
# "rte accuracy selected" (one FM in the table), or "<model>/rte accuracy selected" (several)
sel = next(i for i, h in enumerate(head) if h == f"{task} accuracy selected" or h.endswith(f"/{task} accuracy selected"))
length = {"rte": "epochs = 10", "sst2": "epochs = 1"}[task]
text = open(probe).read()
wanted = {("pt", ""), ("idpg", ""), ("lopa", "1"), ("lopa", "4"), ("lora", "4"), ("fft", "")}
written = set()
for r in rows[1:]:
    if len(r) != len(head) or not r[sel]:
        continue
    method, rank = r[0], r[head.index("r")]
    lr = re.search(r"(?:^|[ ,;])lr=([0-9.eE+-]+)", r[sel]).group(1)
    variant = method + (f"-r{rank}" if rank else "")
    t = text.replace(f"name = real-probe-{task}", f"name = real-final-{task}-{variant}")
    t = t.replace(f"root = {root}/probe/{task}", f"root = {root}/final/{task}-{variant}")
    t = re.sub(r"^\[grid\.[a-z]+\]\n(?:[a-z-]+ = .*\n)*\n?", "", t, flags=re.M)   # the per-method grids
    t = re.sub(r"^method = .*$", f"method = {method}", t, flags=re.M)
    t = re.sub(r"^seed = .*$", f"seed = {seeds}", t, flags=re.M)
    t = re.sub(r"^(epochs|max-steps) = .*$", length, t, flags=re.M)
    if task == "sst2":  # 4,146 steps: evaluate about every tenth of the epoch
        t = re.sub(r"^eval-every = .*$", "eval-every = 400", t, flags=re.M)
        t = re.sub(r"^# every 200 steps;", "# every 400 steps;", t, flags=re.M)
    t = t.replace("[fixed]\n", f"[fixed]\nlr = {lr}\n" + (f"rank = {rank}\n" if rank else ""))
    for key, users in {"num-virtual-tokens": ("pt", "idpg", "lopa"), "prompt-init": ("pt", "lopa")}.items():
        if method not in users:  # a sweep refuses a key that none of its methods uses
            t = re.sub(rf"^{key} = .*\n", "", t, flags=re.M)
    t = re.sub(r"\A(#.*\n)+", f"# Written by scripts/fidelity_real.sh: real-probe-{task}.ini's {variant} at the lr selected on holdout ({csv_path}), full length, seeds {seeds}.\n", t)
    open(f"{out}/real-final-{task}-{variant}.ini", "w").write(t)
    written.add((method, rank))
if wanted - written:
    sys.exit(f"fidelity_real.sh: {csv_path}: no selected lr for {sorted(wanted - written)}")
print(task, "final specs:", sorted(written))
PY
done

# 3. Seeds 0, 1, 2 at full length, then the table.
for t in $TASKS; do ls "$OUT/specs/real-final-$t-"*.ini; done | run_specs
"$LOPA" report --root "$OUT/final" --select-by holdout --report dev | tee "$OUT/final-report.md"

archive
pooled_report
exit
}
