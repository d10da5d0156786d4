#!/usr/bin/env bash
# The configuration-reference check must fail, naming the drift, when the committed file and the
# binaries' tables differ: a copy with one flag's row removed must be reported.
# Usage: config_reference_drift.sh PROXY_BIN INIT_BIN
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
grep -q -- '`--workers`' "$root/docs/configuration.md" || { echo "no --workers row to remove"; exit 1; }
grep -v -- '`--workers`' "$root/docs/configuration.md" >"$scratch/drifted.md"
out=$("$root/scripts/gen-docs" --check --doc "$scratch/drifted.md" --proxy "$1" --init "$2" 2>&1)
rc=$?
echo "$out"
if [ $rc -ne 1 ] || ! grep -q -- '^+| `--workers`' <<<"$out" || ! grep -q 'differs' <<<"$out"; then
  echo "FAIL: the drift was not reported (exit $rc)"
  exit 1
fi
echo "drift reported as expected"
