#!/usr/bin/python3
"""The cell command of the sweep tests while `lopa train` is not built: a process per MPI rank that
follows the trainer's contract with the executors (cluster/cell_command.h, DESIGN.md sections 4-5):

  * reads the cell's config (KEY = VALUE lines) and writes RUN_DIR/metrics.h5 from rank 0 with
    h5py -- an independent HDF5 writer -- status "running" first, then "completed" or "failed";
  * on SIGUSR1 writes RUN_DIR/checkpoint/state, leaves status "running" and exits 75; started again
    on the same RUN_DIR it resumes from that checkpoint;
  * every rank writes RUN_DIR/rank-<r>-of-<n>.txt (so tests see how many ranks the launcher made).

Test knobs: --fail-once-if KEY=VALUE fails the first attempt of matching cells, --always-fail-if
KEY=VALUE every attempt, --sleep S works for S seconds in all (in small steps, so SIGUSR1 is seen
promptly; a resumed run does only what its checkpoint says is left).
"""
import argparse
import json
import os
import signal
import sys
import time

import h5py
import numpy as np


def env_int(names, default):
    for n in names:
        if n in os.environ:
            return int(os.environ[n])
    return default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--fail-once-if", default="")
    ap.add_argument("--always-fail-if", default="")
    a = ap.parse_args()

    rank = env_int(["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"], 0)
    size = env_int(["OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"], 1)
    if rank != 0:  # only rank 0 checkpoints; the others must not die of the forwarded SIGUSR1
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "rank-%d-of-%d.txt" % (rank, size)), "w") as f:
        f.write("%d\n" % os.getpid())
    if rank != 0:
        return 0

    config = {}
    with open(a.config) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                config[k.strip()] = v.strip()

    stop = {"usr1": False}
    signal.signal(signal.SIGUSR1, lambda *_: stop.__setitem__("usr1", True))

    ckpt = os.path.join(a.out, "checkpoint", "state")
    resumed = os.path.exists(ckpt)
    done = 0.0  # seconds of work already done (restored from the checkpoint)
    if resumed:
        with open(ckpt) as f:
            done = float(f.read().split()[1])
    with open(os.path.join(a.out, "invocations.log"), "a") as f:
        f.write("attempt resumed=%d pid=%d\n" % (resumed, os.getpid()))

    def matches(cond):
        if not cond:
            return False
        k, v = cond.split("=", 1)
        return config.get(k) == v

    # The run log in DESIGN.md section 5's layout (types as results/run_log.h writes them).
    log = os.path.join(a.out, "metrics.h5")
    now = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with h5py.File(log, "w") as h:
        h.attrs["schema_version"] = np.int64(1)
        h.attrs["status"] = "running"
        h.attrs["config"] = json.dumps(config)
        for k in ("method", "task", "model"):
            h.attrs[k] = config.get(k, "")
        h.attrs["device"] = "cpu"
        h.attrs["git_sha"] = ""
        h.attrs["started_at"] = now()
        h.attrs["finished_at"] = ""
        h.attrs["error"] = ""
        tp = int(config.get("tp", "1"))
        for k, v in (("seed", int(config.get("seed", "0"))), ("world_size", size), ("tp", tp), ("dp", size // tp),
                     ("trainable_params", 1000), ("total_params", 260000)):
            h.attrs[k] = np.int64(v)
        for name in ("step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"):
            h.create_dataset("train/" + name, shape=(0,), maxshape=(None,), chunks=(64,),
                             dtype=np.int64 if name == "step" else np.float64)
        for name in ("step", "accuracy"):
            h.create_dataset("eval/" + name, shape=(0,), maxshape=(None,), chunks=(64,),
                             dtype=np.int64 if name == "step" else np.float64)

    step = 0.05
    while done < a.sleep and not stop["usr1"]:
        time.sleep(step)
        done += step
    if stop["usr1"]:
        os.makedirs(os.path.dirname(ckpt), exist_ok=True)
        with open(ckpt + ".tmp", "w") as f:
            f.write("done %.2f\n" % done)
        os.replace(ckpt + ".tmp", ckpt)
        return 75

    marker = os.path.join(a.out, "failed-once")
    fail = matches(a.always_fail_if) or (matches(a.fail_once_if) and not os.path.exists(marker))
    if fail:
        open(marker, "w").close()
    with h5py.File(log, "a") as h:
        for name, v in (("step", 1), ("loss", 1.0), ("lr", 1e-3), ("grad_norm", 1.0), ("tokens_per_s", 1.0),
                        ("elapsed_s", done)):
            h["train/" + name].resize((1,))
            h["train/" + name][0] = v
        if fail:
            h.attrs["error"] = "failing on purpose (test knob)"
        else:
            h["eval/step"].resize((1,))
            h["eval/step"][0] = 1
            h["eval/accuracy"].resize((1,))
            h["eval/accuracy"][0] = 0.5 + 0.1 * int(config.get("seed", "0"))
        h.attrs["finished_at"] = now()
        h.attrs["status"] = "failed" if fail else "completed"
    return 3 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
