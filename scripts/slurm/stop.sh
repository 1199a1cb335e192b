#!/usr/bin/env bash
# Stops the daemons that scripts/slurm/start.sh started in DIR, by the pid files it wrote there
# (slurmd, slurmctld, then munged), waiting for each to exit (SIGKILL after 10 s). Leaves DIR in place
# unless --remove is given. Never touches daemons it did not start.
#
# usage: stop.sh DIR [--remove]
set -uo pipefail
dir="${1:?usage: stop.sh DIR [--remove]}"
remove="${2:-}"

stop_pidfile() {
  local f="$1" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Jobs first, while the controller still runs: their slurmstepd processes would outlive slurmd.
if [[ -f "$dir/run/slurmctld.pid" ]] && kill -0 "$(cat "$dir/run/slurmctld.pid" 2>/dev/null)" 2>/dev/null; then
  export SLURM_CONF="$dir/slurm.conf"
  if [[ -n "$(squeue -h --me -o %i 2>/dev/null)" ]]; then
    scancel --me 2>/dev/null || true
    for _ in $(seq 1 150); do
      [[ -z "$(squeue -h --me -o %i 2>/dev/null)" ]] && break
      sleep 0.2
    done
  fi
fi

stop_pidfile "$dir/run/slurmd.pid"
stop_pidfile "$dir/run/slurmctld.pid"
stop_pidfile "$dir/run/munged.pid"
if [[ "$remove" == "--remove" ]]; then rm -rf "$dir"; fi
