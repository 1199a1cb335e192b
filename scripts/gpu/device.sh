#!/usr/bin/env bash
# Run ON the lent GPU machine (device tool), from the repository root, with .gpu carried:
#   bash scripts/gpu/device.sh [runtime|full]
# Unpacks the carried Debian packages into a private sysroot (never into /) and builds against the
# CUDA LibTorch inside Python's torch, with NCCL from its wheel.
#   runtime (default): the runtime only (LOPA_RUNTIME_ONLY), then the distributed suites (NCCL + MPI)
#                      and the all-reduce benchmark.
#   full:              the lopa program (HDF5 and Boost from the sysroot, no tests), then the bf16
#                      train-step MFU of a ~1.1B Llama (bench/gpu_train_bench.sh).
# Logs go to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-runtime}
[[ $MODE == runtime || $MODE == full ]] || { echo "device.sh: unknown mode '$MODE' (runtime or full)" >&2; exit 2; }
OUT=${OUT:-/tmp/lopa-gpu-out}
mkdir -p "$OUT"
SYS=/tmp/lopa-sysroot
ML=$SYS/usr/lib/x86_64-linux-gnu
rm -rf "$SYS" && mkdir -p "$SYS"
for f in .gpu/debs/*.deb; do dpkg -x "$f" "$SYS"; done
export OPAL_PREFIX=$SYS/usr
export PATH=$SYS/usr/bin:$PATH
export LD_LIBRARY_PATH=$ML/openmpi/lib:$ML:${LD_LIBRARY_PATH:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_pcompress_base_silence_warning=1
ln -sf mpiexec.openmpi "$SYS/usr/bin/mpirun"

PY=${PYTHON:-python3}
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
NCCL_DIR=$($PY -c 'import importlib.util as u; print(list(u.find_spec("nvidia.nccl").submodule_search_locations)[0])')
NCCL_LIB=$(ls "$NCCL_DIR"/lib/libnccl.so* | head -1)
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "nccl: $NCCL_LIB"

# The fixtures beside the checkout do not travel to the device: fetch_debs.sh copies the small ones
# into .gpu/shared, which does.
SHARED_ARGS=()
[[ -d .gpu/shared ]] && SHARED_ARGS=(-DLOPA_SHARED_DIR="$PWD/.gpu/shared")
# Both modes: CUDA LibTorch from Python's torch, MPI from the sysroot, NCCL from its wheel.
configure() {  # BUILD_DIR, then the mode's own -D options
  local dir=$1
  shift
  cmake -S . -B "$dir" "${SHARED_ARGS[@]}" -DCMAKE_BUILD_TYPE=Release "$@" \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$SYS/usr;$ML/cmake;$SYS/usr/share/cmake" \
    -DMPI_C_COMPILER="$SYS/usr/bin/mpicc.openmpi" -DMPIEXEC_EXECUTABLE="$SYS/usr/bin/mpiexec.openmpi" \
    -DNCCL_INCLUDE_DIR="$NCCL_DIR/include" -DNCCL_LIBRARY="$NCCL_LIB" \
    -DCUDA_RUNTIME_INCLUDE_DIR=/usr/local/cuda/include 2>&1 | tee "$OUT/configure.log" | grep -E "lopa:|Error|error" || true
}
if [[ $MODE == full ]]; then
  BUILD=build-gpu-full
  configure $BUILD -DLOPA_BUILD_TESTS=OFF -DLOPA_BUILD_BENCH=OFF -DLOPA_USE_TCMALLOC=OFF -DLOPA_HDF5_PREFIX="$SYS/usr"
  cmake --build $BUILD -j"$(nproc)" --target lopa 2>&1 | tee "$OUT/build.log" | grep -E "error|Error" | tail -40
  # HDF5 from the sysroot needs its system libraries (curl, ssl, ...) on this machine: name what is missing.
  missing=$(ldd $BUILD/bin/lopa | grep "not found" || true)
  [[ -z $missing ]] || { echo "device.sh: libraries missing on this machine:"; echo "$missing"; exit 1; }
  echo "== bf16 train step, ~1.1B Llama, one GPU (PT, LoPA, LoRA)"
  bash bench/gpu_train_bench.sh $BUILD /tmp/lopa-gpu-work | tee "$OUT/train_bench.jsonl"
  exit 0
fi

BUILD=build-gpu
configure $BUILD -DLOPA_RUNTIME_ONLY=ON
cmake --build $BUILD -j"$(nproc)" 2>&1 | tee "$OUT/build.log" | grep -E "error|Error|Built target" | tail -40
echo "== ctest (runtime-only build: communicators, tensor parallel, data parallel; NCCL on the GPU)"
ctest --test-dir $BUILD --output-on-failure -j4 > "$OUT/ctest.log" 2>&1 && echo "ctest: all passed" ||
  { echo "ctest: failures:"; grep -E "tests passed|\(Failed\)|\(Timeout\)|Exception" "$OUT/ctest.log"; }
for b in $BUILD/bin/bench_allreduce; do
  [[ -x $b ]] || continue
  echo "== all-reduce: NCCL np 1 (one GPU); MPI CPU np 2"
  mpirun --oversubscribe -np 1 $b --device cuda 2>&1 | tee "$OUT/bench_nccl.log" | tail -20
  mpirun --oversubscribe -np 2 $b --device cpu 2>&1 | tee "$OUT/bench_mpi.log" | tail -20
done
