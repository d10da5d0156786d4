#!/bin/sh
# A long fuzzing campaign: builds the libFuzzer targets (clang) and runs each one until it has
# used CPU_SECONDS of CPU time (not wall time, so a busy machine only makes it take longer).
# The targets run in parallel at the lowest priority. Afterwards each target's corpus is
# minimised (-merge=1) into OUT/<target>/corpus, and OUT/summary.txt gets, per target, the CPU
# seconds used, executions, exec/s, coverage (cov/ft) and any crash files found.
# Usage: campaign.sh [cpu-seconds-per-target] [out-dir] [targets...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
budget=${1:-3600}
out=${2:-$here/../../build/fuzz-campaign}
shift 2 2>/dev/null || shift $#
targets=${*:-"http_request http_response h2_client h2_upstream"}
build=$out/build
cc=$(command -v clang || command -v clang-14)
cxx=$(command -v clang++ || command -v clang++-14)
mkdir -p "$out"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
for t in $targets; do nice cmake --build "$build" -j2 --target "${t}_fuzz" >/dev/null; done

cpu_seconds() { # utime + stime of a pid, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

run_one() {
  t=$1
  dir=$out/$t
  mkdir -p "$dir/work" "$dir/artifacts"
  cp -n "$here/corpus/$t/"* "$dir/work/" 2>/dev/null || true
  cd "$dir/artifacts"
  nice -n 19 "$build/${t}_fuzz" -max_total_time=864000 -max_len=4096 -rss_limit_mb=2048 \
    -print_final_stats=1 "$dir/work" >"$dir/log.txt" 2>&1 &
  pid=$!
  used=0
  while kill -0 "$pid" 2>/dev/null; do
    used=$(cpu_seconds "$pid")
    [ "$used" -ge "$budget" ] && { kill -INT "$pid"; break; }
    sleep 10
  done
  wait "$pid" || true
  rm -rf "$dir/corpus" && mkdir -p "$dir/corpus"
  nice -n 19 "$build/${t}_fuzz" -merge=1 -max_len=4096 "$dir/corpus" "$dir/work" >"$dir/merge.txt" 2>&1 || true
  last=$(grep -E '^#[0-9]+' "$dir/log.txt" | tail -n 1)
  execs=$(grep -E '^stat::number_of_executed_units' "$dir/log.txt" | awk '{print $2}')
  rate=$(grep -E '^stat::average_exec_per_sec' "$dir/log.txt" | awk '{print $2}')
  crashes=$(ls "$dir/artifacts" | wc -l)
  echo "$t cpu_s=$used execs=${execs:-?} exec_per_s=${rate:-?} corpus_min=$(ls "$dir/corpus" | wc -l) crashes=$crashes last: $last" >>"$out/summary.txt"
}

: >"$out/summary.txt"
for t in $targets; do run_one "$t" & done
wait
cat "$out/summary.txt"
