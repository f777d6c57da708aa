#!/usr/bin/env bash
# The GPU device check, one command: builds the CUDA addon and the standalone check with nvcc,
# runs the check and benchmark (top-k against a float64 reference for ip, cosine and l2; then
# N = 1,000,000, d = 768, B = 1024, k = 10 in FP32 and TF32, with cuBLAS's SGEMM rate measured in
# the same run), runs the project's CUDA tests with vitest, and prints one table.
# Needs only this tree, .device/ from bench/gpu/prepare.sh (Node, N-API headers, node_modules),
# nvcc and python3 (which finds cuBLAS among its packages). Logs and the table go to $OUT (or
# .device/out). Exit: 0 all passed; 77 no GPU here (nothing failed); 1 something failed.
# A full run takes about 2–4 minutes on an H200; give the device tool timeout_s 480.
set -uo pipefail
cd "$(dirname "$0")/../.."
dev=.device
out=${OUT:-$dev/out}
mkdir -p "$out"
started=$(date +%s)
say() { printf '[gpu] %s\n' "$*"; }
export NO_COLOR=1 FORCE_COLOR=0

# Node: the carried binary (the GPU machine has none).
if [ -s "$dev/node.xz" ]; then
  node=$PWD/$dev/bin/node
  if [ ! -x "$node" ]; then
    mkdir -p "$dev/bin"
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$dev/node.xz" "$node" && chmod +x "$node"
  fi
else
  node=$(command -v node) || { say "no Node: run bench/gpu/prepare.sh first"; exit 1; }
fi
say "node $("$node" --version)"

if [ ! -d node_modules/vitest ]; then
  [ -s "$dev/node_modules.tar.xz" ] || { say "no node_modules and no $dev/node_modules.tar.xz"; exit 1; }
  python3 - "$dev/node_modules.tar.xz" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    try:
        t.extractall('.', filter='tar')
    except TypeError:
        t.extractall('.')
EOF
fi

# cuBLAS: HYPERSYNC_CUBLAS_PATH if set, else the newest libcublas among python3's packages
# (PyTorch's nvidia/cu13/lib, nvidia/cublas/lib) or the CUDA toolkit.
if [ -z "${HYPERSYNC_CUBLAS_PATH:-}" ]; then
  cublas=$(python3 - <<'EOF'
import glob, os, site, sys
dirs = list(getattr(site, 'getsitepackages', lambda: [])()) + [p for p in sys.path if p.endswith('-packages')]
found = []
for d in dict.fromkeys(dirs):
    for pattern in ('nvidia/*/lib/libcublas.so*', 'torch/lib/libcublas.so*'):
        found += glob.glob(os.path.join(d, pattern))
for d in ('/usr/local/cuda/lib64', '/usr/local/cuda/targets/x86_64-linux/lib', '/usr/lib/x86_64-linux-gnu'):
    found += glob.glob(os.path.join(d, 'libcublas.so*'))
def rank(f):
    b = os.path.basename(f)
    return (0 if '.so.13' in b else 1 if '.so.12' in b else 2, len(f))
found = sorted((f for f in found if 'Lt' not in os.path.basename(f)), key=rank)
print(os.path.dirname(found[0]) if found else '')
EOF
  )
  if [ -n "$cublas" ]; then
    export HYPERSYNC_CUBLAS_PATH=$cublas LD_LIBRARY_PATH=$cublas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
fi
say "cuBLAS: ${HYPERSYNC_CUBLAS_PATH:-not found}"
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
say "GPU: ${gpu:-none found by nvidia-smi}"

say "building kernels/cuda"
HYPERSYNC_REQUIRE_CUDA=1 "$node" scripts/build-cuda.mjs --force --node-include="$dev/node-include" >"$out/build.log" 2>&1
build_rc=$?
tail -3 "$out/build.log"
build="$(cat kernels/cuda/build/BUILD_INFO 2>/dev/null)"
if [ $build_rc -ne 0 ]; then
  if [ -s "$dev/cuda-build.tar.xz" ]; then
    say "build failed (see build.log); using the carried build"
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall("kernels/cuda")' "$dev/cuda-build.tar.xz"
    build="FAILED here; carried: $(cat kernels/cuda/build/BUILD_INFO 2>/dev/null)"
  else
    build="FAILED (build.log)"
  fi
fi

say "standalone check and benchmark"
timeout 300 kernels/cuda/build/check "$@" 2>&1 | tee "$out/check.log"
check_rc=${PIPESTATUS[0]}

say "vitest test/unit/cuda-kernel.test.ts"
timeout 300 "$node" node_modules/vitest/vitest.mjs run test/unit/cuda-kernel.test.ts --reporter=verbose >"$out/vitest.log" 2>&1
vitest_rc=$?
grep -E '✓|×|↓|FAIL|Error' "$out/vitest.log" | sed 's/^ *//' | cut -c1-220 | head -60
tests=$(grep -E '^ *Tests ' "$out/vitest.log" | tail -1 | sed 's/^ *Tests *//')

r() { awk -v k="$1" '$1 == "RESULT" && $2 == k { $1 = ""; $2 = ""; sub(/^  */, ""); print; exit }' "$out/check.log"; }
row() { printf '| %s | %s |\n' "$1" "${2:--}"; }
{
  echo '| item | value |'
  echo '| --- | --- |'
  row 'GPU (nvidia-smi)' "$gpu"
  row 'build' "$build"
  row 'cuBLAS' "$(r cublas) ${HYPERSYNC_CUBLAS_PATH:-}"
  row 'standalone check (exit code)' "$check_rc: $(r status), checks $(r checks), seed $(r seed)"
  row 'benchmark shape' "$(r bench_shape)"
  row 'engine FP32 queries/s (ms per batch)' "$(r fp32_qps) ($(r fp32_batch_ms)), verify $(r fp32_verify)"
  row 'engine TF32 queries/s (ms per batch)' "$(r tf32_qps) ($(r tf32_batch_ms)), verify $(r tf32_verify)"
  row 'TF32 top-k rows shared with FP32' "$(r tf32_recall_vs_fp32)"
  row 'cuBLAS SGEMM FP32 TFLOP/s (GEMM-only queries/s)' "$(r sgemm_fp32_tflops) ($(r sgemm_fp32_qps_ceiling))"
  row 'cuBLAS SGEMM TF32 TFLOP/s (GEMM-only queries/s)' "$(r sgemm_tf32_tflops) ($(r sgemm_tf32_qps_ceiling))"
  row 'index upload, 1M × 768 (s)' "$(r index_build_s)"
  row 'vitest cuda-kernel.test.ts (exit code)' "$vitest_rc: $tests"
  row 'wall time (s)' "$(($(date +%s) - started))"
} | tee "$out/summary.md"

if [ $check_rc -eq 77 ] || [ $check_rc -eq 78 ]; then
  [ $vitest_rc -eq 0 ] && exit 77
  exit 1
fi
[ $build_rc -eq 0 ] && [ $check_rc -eq 0 ] && [ $vitest_rc -eq 0 ] && exit 0
exit 1
