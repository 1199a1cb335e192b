#!/usr/bin/env bash
# Run ON the lent GPU machine (device tool), from the repository root, with .gpu carried:
#   bash scripts/gpu/device.sh [runtime|full]
# Unpacks the carried Debian packages into a private sysroot (never into /) and builds against the
# CUDA LibTorch inside Python's torch, with NCCL from its wheel.
#   runtime (default): the runtime only (LOPA_RUNTIME_ONLY), then the distributed suites (NCCL + MPI)
#                      and the all-reduce benchmark.
#   full:              the lopa program (HDF5 and Boost from the sysroot, no tests), then the bf16
#                      train-step MFU of a ~1.1B Llama (bench/gpu_train_bench.sh).
#   fidelity:          the lopa program, a 5-step smoke run of each method on the GPU, then issue 17's
#                      real-data plan (scripts/fidelity_real.sh, DEVICE=cuda) until FIDELITY_DEADLINE
#                      (seconds since the epoch; default: 560 s after this script started); the
#                      completed cells' logs come back as $OUT/results-cuda.tar.gz (resumable: a later
#                      call restores them). Needs .gpu/shared with glue-lm-8M and GLUE RTE / SST-2.
# Logs go to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-runtime}
[[ $MODE == runtime || $MODE == full || $MODE == fidelity ]] ||
  { echo "device.sh: unknown mode '$MODE' (runtime, full or fidelity)" >&2; exit 2; }
START=$(date +%s)
OUT=${OUT:-/tmp/lopa-gpu-out}
mkdir -p "$OUT"
SYS=/tmp/lopa-sysroot
ML=$SYS/usr/lib/x86_64-linux-gnu
rm -rf "$SYS" && mkdir -p "$SYS"
if [[ -f .gpu/sysroot.tar.xz ]]; then  # scripts/gpu/pack_sysroot.sh's pruned sysroot
  tar -C "$SYS" -xJf .gpu/sysroot.tar.xz
else
  for f in .gpu/debs/*.deb; do dpkg -x "$f" "$SYS"; done
fi
# cpp-httplib is found through pkg-config: the sysroot's pkgconf, reading only the sysroot's .pc files,
# whose /usr paths it prefixes with the sysroot.
export PKG_CONFIG_SYSROOT_DIR=$SYS PKG_CONFIG_LIBDIR=$ML/pkgconfig:$SYS/usr/share/pkgconfig
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
    -DCUDA_RUNTIME_INCLUDE_DIR=/usr/local/cuda/include -DPKG_CONFIG_EXECUTABLE="$SYS/usr/bin/pkgconf" 2>&1 | tee "$OUT/configure.log" | grep -E "lopa:|Error|error" || true
}
if [[ $MODE == full || $MODE == fidelity ]]; then
  BUILD=build-gpu-full
  if [[ ! -x $BUILD/bin/lopa ]]; then  # a warm machine keeps the last call's build
    configure $BUILD -DLOPA_BUILD_TESTS=OFF -DLOPA_BUILD_BENCH=OFF -DLOPA_USE_TCMALLOC=OFF -DLOPA_HDF5_PREFIX="$SYS/usr"
  fi
  if ! cmake --build $BUILD -j"$(nproc)" --target lopa > "$OUT/build.log" 2>&1; then
    grep -E -A3 "error|Error" "$OUT/build.log" | head -60
    echo "device.sh: the build failed ($OUT/build.log)"
    exit 1
  fi
  echo "built in $(( $(date +%s) - START )) s"
  # HDF5 from the sysroot needs its system libraries (curl, ssl, ...) on this machine: name what is missing.
  missing=$(ldd $BUILD/bin/lopa | grep "not found" || true)
  [[ -z $missing ]] || { echo "device.sh: libraries missing on this machine:"; echo "$missing"; exit 1; }
fi
if [[ $MODE == fidelity ]]; then
  [[ -e ../shared ]] || ln -s "$PWD/.gpu/shared" ../shared  # the specs read ../shared, as here
  export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
  echo "== smoke: 5 steps of each method on the GPU, at once (RTE, glue-lm-8M, fp32)"
  t0=$(date +%s)
  declare -A pid
  mkdir -p /tmp/lopa-smoke  # not in $OUT: the tool returns 8 files at most
  for m in pt idpg lopa lora fft; do
    $BUILD/bin/lopa train --model ../shared/models/glue-lm-8M --task rte --data-dir ../shared/data \
      --method $m --max-steps 5 --eval-every 5 --max-eval-examples 64 --device cuda --autocast none \
      --out /tmp/lopa-smoke/$m > /tmp/lopa-smoke/$m.log 2>&1 &
    pid[$m]=$!
  done
  smoke_ok=1
  for m in pt idpg lopa lora fft; do
    if wait "${pid[$m]}" && [[ -f /tmp/lopa-smoke/$m/metrics.h5 ]]; then
      echo "smoke $m: ok"
    else
      smoke_ok=0; echo "smoke $m: FAILED"; tail -5 /tmp/lopa-smoke/$m.log
    fi
  done
  echo "smoke: $(( $(date +%s) - t0 )) s"
  [[ $smoke_ok == 1 ]] || exit 1
  deadline=${FIDELITY_DEADLINE:-$((START + 560))}
  left=$((deadline - $(date +%s)))
  echo "== issue 17's plan on the GPU for up to $left s (JOBS=${JOBS:-4}, CELL_JOBS=${CELL_JOBS:-7})"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 > "$OUT/gpu-util.csv" &
  smi=$!
  mkdir -p experiments/sweeps/fidelity/results-cuda
  DEVICE=cuda LOPA=$BUILD/bin/lopa JOBS=${JOBS:-4} CELL_JOBS=${CELL_JOBS:-7} NICE= \
    timeout --kill-after=5 "$left" bash scripts/fidelity_real.sh > "$OUT/fidelity.log" 2>&1 ||
    echo "fidelity_real.sh stopped: exit $? (124: the deadline)"
  kill $smi 2>/dev/null || true
  tail -20 "$OUT/fidelity.log"
  tail -n 3 runs/fidelity-real-cuda/logs/*.log 2>/dev/null || true
  DEVICE=cuda LOPA=$BUILD/bin/lopa bash scripts/fidelity_real.sh archive
  tar -C experiments/sweeps/fidelity -czf "$OUT/results-cuda.tar.gz" results-cuda
  (cd runs/fidelity-real-cuda && tar -czf "$OUT/sweep-logs.tar.gz" logs specs $(ls -d *.md *.csv */*/sweep/logs 2>/dev/null) \
     --exclude='lopa-smoke/*/*' -C /tmp lopa-smoke)
  echo "completed cells: $(find experiments/sweeps/fidelity/results-cuda -name metrics.h5 | wc -l); $(( $(date +%s) - START )) s in all"
  exit 0
fi
if [[ $MODE == full ]]; then
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
