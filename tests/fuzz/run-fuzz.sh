#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang++ in a separate small build tree and
# runs one of them for a short while.
# Usage: run-fuzz.sh [build-dir] [seconds] [target: http_request | http_response]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/fuzz-clang}
seconds=${2:-20}
target=${3:-http_request}
cc=$(command -v clang || command -v clang-14)
cxx=$(command -v clang++ || command -v clang++-14)
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DDEVSPACES_FUZZ_SECONDS="$seconds" >/dev/null
nice cmake --build "$build" -j2 --target "${target}_fuzz"
mkdir -p "$build/artifacts/$target" "$build/corpus/$target"
cd "$build/artifacts/$target"
# DEVSPACES_FUZZ_SEED (CI sets it) makes the run reproducible; unset, every run explores anew.
exec "$build/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 \
  ${DEVSPACES_FUZZ_SEED:+-seed=$DEVSPACES_FUZZ_SEED} \
  -print_final_stats=1 "$build/corpus/$target" "$here/corpus/$target"
