#!/usr/bin/env bash
# Installs lopa's system dependencies from Debian's archive. Idempotent: only what is missing is installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-openmp
  libgoogle-perftools-dev
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools python3-h5py
  libboost-program-options-dev
  libgtest-dev nlohmann-json3-dev
  python3 python3-numpy python3-torch
  bubblewrap gnuplot-nox ccache
  libcpp-httplib-dev curl iproute2
  slurm-wlm munge procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all system packages present"
fi

# Node.js and npm for the serve tests' official `openai` client (scripts/setup_node_clients.sh). Machines
# that have them from another source (NodeSource's nodejs bundles npm) keep theirs: Debian's npm package
# cannot be installed beside NodeSource's nodejs.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing nodejs npm"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
