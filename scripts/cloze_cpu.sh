#!/usr/bin/env bash
# Issue 16 at CPU scale, end to end: pretrain a small RoBERTa MLM on the GLUE train text (lopa pretrain
# --objective mlm), probe each method's learning rate on seed 0 (PT, IDPG, LoPA, LoRA on SST-2; cloze on the
# RoBERTa, log-likelihood on glue-lm-8M), select it on the holdout split, run 3 seeds at it, and report dev
# accuracy (lopa report --select-by holdout --report dev) and seconds per step. See
# experiments/sweeps/cloze-cpu/README.md for the results of one run of this script.
#
# usage: scripts/cloze_cpu.sh            (from the repository root; ~1 h on 2 loaded cores)
# env:   LOPA (default build/bin/lopa)   OUT (default runs/cloze-cpu)   SETTINGS (default "cloze decoder")
#        SEEDS (default "0, 1, 2")       PRETRAIN_STEPS (default 1500)   JOBS (sweeps at once, default 2)
#        NICE (default "nice -n 19"; empty: none)
# Completed runs are kept: rerunning the script resumes where it stopped (a sweep never reruns a completed cell).
set -euo pipefail
cd "$(dirname "$0")/.."
LOPA=${LOPA:-build/bin/lopa}
OUT=${OUT:-runs/cloze-cpu}
SETTINGS=${SETTINGS:-cloze decoder}
SEEDS=${SEEDS:-0, 1, 2}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-1500}
NICE=${NICE-nice -n 19}
JOBS=${JOBS:-2}
SPECS=experiments/sweeps/cloze-cpu
# One thread per process: the two settings' sweeps run side by side on 2 cores, and OpenMP barriers
# spin-wait under oversubscription.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"
[ "$OUT" = runs/cloze-cpu ] || { echo "cloze_cpu.sh: the specs name runs/cloze-cpu; OUT must be that" >&2; exit 2; }

# 1. The small RoBERTa (4 layers, d 128, the real roberta tokenizer's 50265-token vocabulary).
MODEL=$OUT/roberta-small-mlm
if [ ! -f "$MODEL/pretrain.json" ]; then
  $NICE "$LOPA" pretrain --objective mlm --model-config $SPECS/roberta-small.json \
    --tokenizer ../shared/tokenizers/roberta --glue-data ../shared/data --out "$MODEL" \
    --pretrain-steps "$PRETRAIN_STEPS" --pretrain-batch-size 32 --seq-len 64 --pretrain-lr 0.001 --warmup-steps 100 \
    2>&1 | tee "$OUT/pretrain.log"
fi

# 2. The learning-rate probe, seed 0: one spec per (setting, method), JOBS sweeps at a time.
run_specs() {  # spec files on stdin; each sweep's output in $OUT/logs/<spec name>.log
  mkdir -p "$OUT/logs"
  xargs -P "$JOBS" -I{} sh -c \
    "$NICE \"\$0\" sweep run --spec \"\$1\" > \"$OUT/logs/\$(basename \"\$1\" .ini).log\" 2>&1 || echo \"failed: \$1\"" \
    "$LOPA" {}
}
for s in $SETTINGS; do for m in pt lopa idpg lora; do echo $SPECS/$s-probe-$m.ini; done; done | run_specs
"$LOPA" report --root "$OUT/probe" --select-by holdout --report dev > "$OUT/probe-report.md"
"$LOPA" report --root "$OUT/probe" --select-by holdout --report dev --format csv > "$OUT/probe-report.csv"

# 3. Each method's lr as selected on holdout; a final spec per setting with 3 seeds at it. The probe's seed-0
#    run at that lr has the same keys, hence the same cell id: it is copied, not rerun.
mkdir -p "$OUT/specs"
for s in $SETTINGS; do
  case $s in cloze) col=roberta-small-mlm ;; decoder) col=glue-lm-8M ;; esac
  python3 - "$OUT/probe-report.csv" "$col" "$SPECS" "$s" "$SEEDS" "$OUT/specs" <<'EOF'
import csv, re, sys
csv_path, col, specs, setting, seeds, out = sys.argv[1:]
rows = list(csv.reader(l for l in open(csv_path) if l.strip()))
head = rows[0]
sel = head.index(f"{col}/sst2 accuracy selected")
lr = {}
for r in rows[1:]:
    if len(r) == len(head) and r[0] in ("pt", "lopa", "idpg", "lora") and r[sel]:
        lr[r[0]] = re.search(r"(?:^|[ ,;])lr=([0-9.eE+-]+)", r[sel]).group(1)
missing = {"pt", "lopa", "idpg", "lora"} - set(lr)
if missing:
    sys.exit(f"cloze_cpu.sh: {csv_path}: no selected lr for {sorted(missing)} on {col}")
# One final spec per method: its probe spec with the seeds crossed and lr fixed at the selected value.
for m in ("pt", "lopa", "idpg", "lora"):
    t = open(f"{specs}/{setting}-probe-{m}.ini").read()
    t = t.replace(f"name = {setting}-probe-{m}", f"name = {setting}-final-{m}")
    t = t.replace(f"root = runs/cloze-cpu/probe/{setting}-{m}", f"root = runs/cloze-cpu/final/{setting}-{m}")
    t = re.sub(r"^lr = .*$", "", t, flags=re.M)
    t = re.sub(r"^seed = .*$", f"seed = {seeds}", t, flags=re.M)
    t = t.replace("[fixed]\n", f"[fixed]\nlr = {lr[m]}\n")
    t = re.sub(r"\A(#.*\n)+", f"# Written by scripts/cloze_cpu.sh: {setting}-probe-{m}.ini at the lr selected on holdout ({csv_path}), {seeds} seeds.\n", t)
    open(f"{out}/{setting}-final-{m}.ini", "w").write(t)
print(setting, "selected lr:", lr)
EOF
  for m in pt lopa idpg lora; do
    "$LOPA" sweep plan --spec "$OUT/specs/$s-final-$m.ini" --json 2>/dev/null
  done > "$OUT/specs/$s-final.plan.json"
  python3 - "$OUT/specs/$s-final.plan.json" "$OUT/probe" <<'EOF'
import glob, json, os, shutil, sys
dec, text, cells = json.JSONDecoder(), open(sys.argv[1]).read(), []
i = 0
while i < len(text):  # one JSON plan per method, concatenated
    while i < len(text) and text[i].isspace(): i += 1
    if i == len(text): break
    obj, i = dec.raw_decode(text, i)
    cells += obj["cells"]
for c in cells:
    src = glob.glob(os.path.join(sys.argv[2], "*", c["id"]))
    if src and not os.path.exists(c["run_dir"]):
        os.makedirs(os.path.dirname(c["run_dir"]), exist_ok=True)
        shutil.copytree(src[0], c["run_dir"])
        print("reused the probe's", c["id"])
EOF
done
for s in $SETTINGS; do for m in pt lopa idpg lora; do echo "$OUT/specs/$s-final-$m.ini"; done; done | run_specs

# 4. The table: dev accuracy at the holdout-selected step, and seconds per training step (median over a
#    run's steps, evaluation excluded; mean over its seeds).
"$LOPA" report --root "$OUT/final" --select-by holdout --report dev | tee "$OUT/final-report.md"
python3 - "$OUT/final" "$OUT/probe" <<'EOF' | tee "$OUT/step-times.md"
import glob, os, re, statistics, subprocess, sys
for root in sys.argv[1:]:
    times = {}
    for h5 in sorted(glob.glob(os.path.join(root, "*", "*", "metrics.h5"))):
        cfg = dict(l.split(" = ", 1) for l in open(os.path.join(os.path.dirname(h5), "config.ini")).read().splitlines()
                   if " = " in l and not l.startswith("#"))
        out = subprocess.run(["h5dump", "-y", "-w", "0", "-d", "/train/elapsed_s", h5], capture_output=True, text=True).stdout
        vals = [float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?", out.split("DATA {", 1)[1].split("}", 1)[0])]
        steps = [b - a for a, b in zip(vals, vals[1:])]
        key = (os.path.basename(cfg["model"].strip()), cfg["method"].strip())
        times.setdefault(key, []).append((statistics.median(steps), len(vals), vals[-1]))
    print(f"\n{root}\n\n| FM | method | s/step (median over a run's steps, mean over runs) | runs | steps | train wall s (mean) |")
    print("|---|---|---:|---:|---:|---:|")
    for (model, method), t in sorted(times.items()):
        print(f"| {model} | {method} | {statistics.mean(x[0] for x in t):.3f} | {len(t)} | {max(x[1] for x in t)} | "
              f"{statistics.mean(x[2] for x in t):.0f} |")
EOF
