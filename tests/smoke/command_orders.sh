#!/usr/bin/env bash
# The documented commands work in the orders a newcomer takes them, from a fresh copy of the
# repository: demo -> bench, demo -> gen-docs -> bench, test -> demo -> bench, and
# bench -> demo -> test. Each command runs
# for real up to its build step (DEVSPACES_BUILD_DRY_RUN=1: configure, then `ninja -t query` on
# the targets it builds, so an unknown target left by a stale cache fails here), and nothing is
# compiled or run. A fresh copy is the tracked files of this checkout, as a clone would have them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/devspaces-orders.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export DEVSPACES_BUILD_DRY_RUN=1

fresh_copy() {
  local dir=$scratch/$1
  mkdir -p "$dir"
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    # One tar reading the whole list (xargs would split a long list into several archives, and
    # the extracting tar stops at the first one's end).
    git -C "$root" ls-files -z --cached --others --exclude-standard |
      (cd "$root" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$dir"
  else
    tar -C "$root" --exclude=./build -cf - . | tar -xf - -C "$dir"
  fi
  echo "$dir"
}

step() {  # step DIR NAME COMMAND...
  local dir=$1 name=$2
  shift 2
  echo "--- $name"
  if ! (cd "$dir" && "$@") >"$scratch/step.log" 2>&1; then
    cat "$scratch/step.log"
    echo "FAIL: '$name' failed after the steps above" >&2
    exit 1
  fi
}

run_order() {  # run_order NAME STEP...
  local name=$1
  shift
  local dir
  dir=$(fresh_copy "$name")
  echo "=== order: $name"
  for s in "$@"; do
    case $s in
      demo) step "$dir" "scripts/demo" scripts/demo ;;
      bench) step "$dir" "bench/run --quick" bench/run --quick ;;
      test) step "$dir" "scripts/test" scripts/test ;;
      docs) step "$dir" "scripts/gen-docs" scripts/gen-docs ;;

    esac
  done
  # What the last step left: the release tree has the bench on, whoever configured it first.
  grep -q '^DEVSPACES_BENCH:BOOL=ON' "$dir/build/release/CMakeCache.txt" ||
    { echo "FAIL: release tree lost the bench tools"; exit 1; }
  rm -rf "$dir"
}

run_order demo-bench demo bench
run_order demo-docs-bench demo docs bench
run_order test-demo-bench test demo bench
run_order bench-demo-test bench demo test
echo "every order passed"
