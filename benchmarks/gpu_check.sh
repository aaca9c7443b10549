#!/usr/bin/env bash
# `make gpu-check OUT=dir`: everything that needs a GPU, in one run that ends
# within 8 minutes on an H100, on a machine without network or pip.
#
#   build     the C++ and CUDA backends (CUDA for the GPU present), then a smoke test
#   backend   tests/test_backend_cuda.py -v: every contract function vs the numpy reference
#   suite     the whole test suite with NEEDLE_DEVICES=cuda, serially
#   bench     python -m benchmarks.run --device cuda (fp32, TF32 off on both sides)
#   train     one epoch of colorization.train on cuda, on the data in .gpudata/
#
# Each step is time-boxed (the caps add up to 7 min 45 s) and a failed
# step does not stop the next.  dir receives flat files only, at most 8 (what
# the GPU machine's tool returns): build.log, backend-cuda.log,
# tests-cuda.log, bench.log, bench.json, bench.png, train.log, summary.txt.
# Tests run with NEEDLE_CUDA_SYNC=1, so an asynchronous CUDA error is
# reported by the kernel (and test) that caused it.
set -u

OUT=${1:-gpu-check-results}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-python3}
SCRATCH=$(mktemp -d)
SUMMARY=$OUT/summary.txt
export PYTHONUNBUFFERED=1
: > "$SUMMARY"

# step NAME CAP_SECONDS LOG COMMAND...: runs COMMAND under a time limit
# (SIGINT first, so pytest still prints its summary), appending its output
# to LOG, and records pass / fail / timeout and the seconds taken.
step() {
  local name=$1 cap=$2 log=$3
  shift 3
  local start=$SECONDS rc status
  echo "=== $name (limit ${cap}s): $*" >> "$log"
  timeout -s INT -k 20 "$cap" "$@" >> "$log" 2>&1
  rc=$?
  case $rc in
    0) status=pass ;;
    124 | 137) status=timeout ;;
    *) status="fail(rc=$rc)" ;;
  esac
  printf '%-8s %-12s %4ds\n' "$name" "$status" $((SECONDS - start)) >> "$SUMMARY"
  echo "$name: $status ($((SECONDS - start))s), log $(basename "$log")"
  return $rc
}

# The pytest result line of a log ("12 passed, 3 skipped in 4.5s"), if any.
pytest_result() {
  grep -E '([0-9]+ (passed|failed|errors?|skipped)|no tests ran).* in [0-9.]+s' "$1" | tail -1 | tr -d '=' |
    sed -E 's/^ +| +$//g'
}

echo "=== nvidia-smi" > "$OUT/build.log"
if nvidia-smi >> "$OUT/build.log" 2>&1; then
  ARCH=native
else
  ARCH="90-real;90-virtual"
  echo "no usable nvidia-smi: building for sm_90 without a GPU" >> "$OUT/build.log"
fi
cat "$OUT/build.log"

# The CUDA module first, then the rest (the C++ module), then a smoke test of
# the CUDA device, which runs even if the C++ module failed to build.
build() {
  cmake -S . -B "$SCRATCH/build" -DCMAKE_BUILD_TYPE=Release -DNEEDLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DPython_EXECUTABLE="$(command -v "$PYTHON")" || return 1
  cmake --build "$SCRATCH/build" -j "$(nproc)" --target ndarray_backend_cuda || return 1
  cmake --build "$SCRATCH/build" -j "$(nproc)"
  local rc=$?
  "$PYTHON" -c "
import numpy as np, needle
from needle.backend_ndarray import ndarray_backend_cuda as m
print('cuda devices:', m.device_count())
dev = needle.cuda()
a = needle.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=dev)
print('smoke:', (a @ a.transpose()).numpy().tolist(), a.sum().numpy())
" || return 1
  return $rc
}
export -f build
export SCRATCH ARCH PYTHON
if ! NEEDLE_CUDA_SYNC=1 step build 120 "$OUT/build.log" bash -c build; then
  echo "--- build.log (tail)"
  tail -40 "$OUT/build.log"
fi

NEEDLE_CUDA_SYNC=1 step backend 50 "$OUT/backend-cuda.log" \
  "$PYTHON" -m pytest tests/test_backend_cuda.py -v -rfEs -p no:cacheprovider

# Serial on purpose: under pytest-xdist eight processes share the GPU and the
# parity tests met out-of-memory errors on an H200; serially the suite takes
# about 30 s there.
NEEDLE_DEVICES=cuda NEEDLE_CUDA_SYNC=1 step suite 140 "$OUT/tests-cuda.log" \
  "$PYTHON" -m pytest tests -rfEs --durations=15 -p no:cacheprovider

if [ -f benchmarks/run.py ]; then
  step bench 85 "$OUT/bench.log" "$PYTHON" -m benchmarks.run --device cuda --out "$SCRATCH/bench"
  [ -f "$SCRATCH/bench/latest.json" ] && cp "$SCRATCH/bench/latest.json" "$OUT/bench.json"
  chart=$(ls -t "$SCRATCH"/bench/*.png 2>/dev/null | head -1)
  [ -n "$chart" ] && cp "$chart" "$OUT/bench.png"
else
  echo "benchmarks/run.py does not exist: no benchmark" | tee "$OUT/bench.log"
  printf '%-8s %-12s %4ds\n' bench missing 0 >> "$SUMMARY"
fi

DATA=""
for candidate in .gpudata/cifar10-jpeg .gpudata/cifar-10-batches-py .gpudata; do
  if [ -d "$candidate" ]; then DATA=$candidate; break; fi
done
if [ -f colorization/train.py ] && [ -n "$DATA" ]; then
  step train 70 "$OUT/train.log" "$PYTHON" -m colorization.train --device cuda --data "$DATA" --epochs 1 \
    --batch-size 64 --out "$SCRATCH/train"
else
  echo "no training: colorization/train.py or the data folder .gpudata/ is missing" | tee "$OUT/train.log"
  printf '%-8s %-12s %4ds\n' train missing 0 >> "$SUMMARY"
fi

{
  echo "backend tests: $(pytest_result "$OUT/backend-cuda.log")"
  echo "suite on cuda: $(pytest_result "$OUT/tests-cuda.log")"
  echo "total: $SECONDS s"
} >> "$SUMMARY"
echo "=== summary ($OUT)"
cat "$SUMMARY"
echo "=== failures (first 40)"
grep -hE '^(FAILED|ERROR) ' "$OUT/backend-cuda.log" "$OUT/tests-cuda.log" 2>/dev/null | cut -c1-300 | head -40
rm -rf "$SCRATCH"
