#!/usr/bin/env bash
# GPU check of the distributed runtime: builds lopa against a CUDA-enabled LibTorch (the one inside the
# Python `torch` package), then runs the NCCL tests and the all-reduce benchmark (NCCL and MPI) under
# mpirun. NCCL refuses two ranks on one GPU, so with one GPU everything runs at np 1; with G > 1 GPUs
# the NCCL tests and the NCCL benchmark also run at np G.
#   bash bench/gpu_check.sh [BUILD_DIR]        (default build-gpu; PYTHON=... picks the interpreter)
# Needs: the packages of scripts/setup.sh, a CUDA toolkit with NCCL (nccl.h, libnccl) in the standard
# CUDA prefix or $CUDA_HOME, and a Python with a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
PYTHON=${PYTHON:-python3}
PREFIX=$($PYTHON -c 'import torch; print(torch.utils.cmake_prefix_path)')
CUDA_OK=$($PYTHON -c 'import torch; print(int(torch.cuda.is_available()))')
GPUS=$($PYTHON -c 'import torch; print(torch.cuda.device_count())')
echo "gpu_check: torch at $PREFIX, CUDA available: $CUDA_OK, GPUs: $GPUS"
[[ $CUDA_OK == 1 ]] || { echo "gpu_check: this torch sees no GPU" >&2; exit 1; }

MPIRUN=(mpirun --oversubscribe)
[[ $(id -u) == 0 ]] && MPIRUN+=(--allow-run-as-root)

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" | grep -E "lopa:|Error" || true
grep -q "LOPA_WITH_NCCL" "$BUILD/runtime/CMakeFiles/lopa_distributed.dir/flags.make" ||
  { echo "gpu_check: CMake did not enable NCCL (see the 'lopa:' line above)" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target tests_comm_nccl tests_comm tests_tp tests_dp bench_allreduce

echo "== NCCL tests, np 1"
"${MPIRUN[@]}" -np 1 "$BUILD/bin/tests_comm_nccl"
if ((GPUS > 1)); then
  echo "== NCCL tests, np $GPUS (one GPU per rank)"
  "${MPIRUN[@]}" -np "$GPUS" "$BUILD/bin/tests_comm_nccl"
fi
echo "== CPU suites under the CUDA build, np 2"
for t in tests_comm tests_tp tests_dp; do "${MPIRUN[@]}" -np 2 "$BUILD/bin/$t" --gtest_brief=1; done

echo "== all-reduce bandwidth: NCCL, np 1 (no link traffic: busbw is 0 by the formula; time = launch latency)"
"${MPIRUN[@]}" -np 1 "$BUILD/bin/bench_allreduce" --device cuda
if ((GPUS > 1)); then
  echo "== all-reduce bandwidth: NCCL, np $GPUS"
  "${MPIRUN[@]}" -np "$GPUS" "$BUILD/bin/bench_allreduce" --device cuda
fi
echo "== all-reduce bandwidth: MPI on CPU tensors, np 2"
"${MPIRUN[@]}" -np 2 "$BUILD/bin/bench_allreduce" --device cpu
