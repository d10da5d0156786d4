#!/usr/bin/env bash
# Ten-second smoke of the bench tools: origin + loadgen on loopback, every request must succeed.
# usage: smoke.sh <devspaces-loadgen> <devspaces-origin>
set -euo pipefail
loadgen=$1
origin=$2
tmp=$(mktemp -d)
origin_pid=
cleanup() {
  if [ -n "$origin_pid" ]; then kill "$origin_pid" 2>/dev/null || true; wait "$origin_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$origin" --address 127.0.0.1 --port 0 >"$tmp/origin.out" &
origin_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/origin.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "smoke: origin did not start" >&2; exit 1; }

check() {  # name, expected minimum requests, loadgen args...
  local name=$1 min=$2
  shift 2
  local out
  out=$("$loadgen" --address 127.0.0.1 --port "$port" --json --label "$name" "$@")
  echo "$out"
  python3 - "$out" "$min" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["errors"] == 0 and r["non_2xx"] == 0, r
assert r["requests"] >= int(sys.argv[2]), r
if r["mode"] == "rate":
    assert r["latency_us"]["p50"] > 0 and r["latency_us"]["p99"] >= r["latency_us"]["p50"], r
PY
}

check keepalive-rate 2500 --rate 1000 --connections 8 --duration 3 --warmup 0.5 --path /1k
check close-rate 800 --rate 500 --connections 4 --duration 2 --close --path /0
check saturate-16k 100 --connections 4 --duration 2 --path /16k --header "azds-route-as: smoke"
check count 500 --connections 2 --requests 500 --duration 5
echo "smoke: ok"
