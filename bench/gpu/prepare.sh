#!/usr/bin/env bash
# Prepares .device/ (git-ignored) on a machine with Node and npm, for one run of
# bench/gpu/run.sh on a GPU machine that has no Node, no npm and no network:
#   .device/node.xz               this Node binary
#   .device/node-include/         the four N-API headers the addon compiles against
#   .device/node_modules.tar.xz   the packages of bench/gpu/modules.txt (vitest, onnxruntime-node, …)
#   .device/cuda-build.tar.xz     this machine's build of kernels/cuda, used there if building fails
# Then it runs bench/gpu/run.sh in a bare copy of the tree (tracked files plus .device only), as
# the GPU machine will: everything but the GPU parts must pass there.
#   --trace      first regenerate bench/gpu/modules.txt from the files the CUDA test opens (strace)
#   --no-verify  skip the run in a bare copy
# Afterwards, with the device tool: run `bash bench/gpu/run.sh` with carry [".device"].
set -euo pipefail
cd "$(dirname "$0")/../.."
dev=.device
mkdir -p "$dev"
node_bin=$(readlink -f "$(command -v node)")

if [[ " $* " == *" --trace "* ]]; then
  trace=$(mktemp)
  strace -f -qq -e trace=openat,open,stat,newfstatat -o "$trace" npx vitest run test/unit/cuda-kernel.test.ts >/dev/null 2>&1 || true
  python3 - "$trace" "$PWD" >bench/gpu/modules.tmp <<'EOF'
import os, re, sys
trace, root = sys.argv[1], sys.argv[2] + '/'
roots = set()
for path in re.findall(r'"(' + re.escape(root) + r'node_modules/[^"]*)"', open(trace).read()):
    parts, i, pkg = path[len(root):].split('/'), 0, None
    while i < len(parts) - 1:
        if parts[i] == 'node_modules' and not parts[i + 1].startswith('.'):
            n = 3 if parts[i + 1].startswith('@') else 2
            if i + n <= len(parts):
                pkg = '/'.join(parts[: i + n])
            i += n
        else:
            i += 1
    if pkg and os.path.isdir(pkg):
        roots.add(pkg)
roots.add('node_modules/node-addon-api')
keep = sorted(p for p in roots if not any(q != p and p.startswith(q + '/') for q in roots))
print('\n'.join(keep))
EOF
  { grep '^#' bench/gpu/modules.txt; cat bench/gpu/modules.tmp; } >bench/gpu/modules.new
  mv bench/gpu/modules.new bench/gpu/modules.txt
  rm -f bench/gpu/modules.tmp "$trace"
  echo "[prepare] bench/gpu/modules.txt: $(grep -vc '^#' bench/gpu/modules.txt) packages"
fi

if [ ! -s "$dev/node.xz" ] || [ "$node_bin" -nt "$dev/node.xz" ]; then
  echo "[prepare] compressing $node_bin ($("$node_bin" --version))"
  xz -T0 -9 -c "$node_bin" >"$dev/node.xz.tmp" && mv "$dev/node.xz.tmp" "$dev/node.xz"
fi

include=$(dirname "$(dirname "$node_bin")")/include/node
[ -f "$include/node_api.h" ] || include=/usr/include/node
rm -rf "$dev/node-include"
mkdir -p "$dev/node-include"
cp "$include"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$dev/node-include/"

echo "[prepare] packing node_modules ($(grep -vc '^#' bench/gpu/modules.txt) packages)"
grep -v '^#' bench/gpu/modules.txt |
  tar -cf - --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
    --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' \
    --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' -T - |
  xz -T0 -6 >"$dev/node_modules.tar.xz"

node scripts/build-cuda.mjs
if [ -f kernels/cuda/build/Release/hypersync_cuda.node ]; then
  tar -cJf "$dev/cuda-build.tar.xz" -C kernels/cuda build/Release/hypersync_cuda.node build/check build/BUILD_INFO
else
  rm -f "$dev/cuda-build.tar.xz"
fi

tracked=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb "$dev" --exclude="$dev/out" --exclude="$dev/bin" | tail -1 | cut -f1)
echo "[prepare] .device: $((carried / 1048576)) MiB; with the tree: $(((tracked + carried) / 1048576)) MiB (limit 64 MiB)"

if [[ " $* " != *" --no-verify "* ]]; then
  bare=$(mktemp -d)
  trap 'rm -rf "$bare"' EXIT
  git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
    [ -e "$f" ] && mkdir -p "$bare/$(dirname "$f")" && cp -p "$f" "$bare/$f"
  done
  cp -r "$dev" "$bare/$dev"
  rm -rf "$bare/$dev/out" "$bare/$dev/bin"
  echo "[prepare] verifying in a bare copy: $bare"
  # Here (no GPU) the check exits 77 and the GPU tests skip: the run must still succeed.
  rc=0
  (cd "$bare" && env -u HYPERSYNC_CUBLAS_PATH PATH="/usr/local/cuda/bin:/usr/bin:/bin" bash bench/gpu/run.sh) || rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    echo "[prepare] the rehearsal failed (exit $rc)"
    exit 1
  fi
  echo "[prepare] rehearsal passed (exit $rc: $([ $rc -eq 77 ] && echo 'no GPU here' || echo 'all ran'))"
fi
