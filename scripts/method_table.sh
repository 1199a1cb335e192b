#!/usr/bin/env bash
# Issue 4's method x task table on stories260K: runs the three sweeps of
# experiments/sweeps/method-table (prompt methods, LoRA, full fine-tuning; SST-2 and story-names;
# 3 seeds) with the local executor, then prints `lopa report` over their root and a table of
# trainable parameters, dev accuracy (best eval, mean ± std over seeds) and seconds per step.
# Usage: scripts/method_table.sh   (from anywhere; runs land in runs/method-table of the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
LOPA=${LOPA:-build/bin/lopa}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread per cell: these models are far too small for two
for g in prompt lora fft; do
  "$LOPA" sweep run --spec "experiments/sweeps/method-table/$g.ini"
done
"$LOPA" report --root runs/method-table --format md
/usr/bin/python3 - runs/method-table <<'PY'
import glob, statistics as st, sys, h5py, numpy as np
rows = {}
for path in sorted(glob.glob(sys.argv[1] + "/**/metrics.h5", recursive=True)):
    with h5py.File(path, "r") as f:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        if a.get("status") != "completed": continue
        cfg = __import__("json").loads(a["config"]) if "config" in a else {}
        method, task = a.get("method", cfg.get("method")), a.get("task", cfg.get("task"))
        # Schema 2 keeps each split's series under eval/<split>/; schema 1 had eval/<metric> for one split.
        key = "eval/dev/accuracy" if "eval/dev/accuracy" in f else "eval/accuracy"
        acc = f[key][:] if key in f else np.array([np.nan])
        el = f["train/elapsed_s"][:]
        r = rows.setdefault((method, task), {"params": int(a["trainable_params"]), "acc": [], "sps": []})
        r["acc"].append(float(np.nanmax(acc)))
        r["sps"].append(float(np.median(np.diff(el))) if len(el) > 1 else float("nan"))
print("\n| method | task | trainable params | dev accuracy (best eval, mean ± std) | seeds | s/step |")
print("|---|---|---:|---:|---:|---:|")
for (m, t), r in sorted(rows.items()):
    sd = st.stdev(r["acc"]) if len(r["acc"]) > 1 else 0.0
    print(f"| {m} | {t} | {r['params']:,} | {100*st.mean(r['acc']):.1f} ± {100*sd:.1f} | {len(r['acc'])} | {st.median(r['sps']):.3f} |")
PY
