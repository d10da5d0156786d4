#!/bin/sh
# Measurements of the raw TCP relay (not a ctest test). Needs root, nginx, wrk, a release build:
#   cmake -S . -B build/h-core-rel -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVSPACES_TESTS=OFF
#   cmake --build build/h-core-rel --target devspaces-proxy
#   sudo tests/integration/tcp_bench.sh build/h-core-rel [GiB]
# 1. Bulk: tcp_relay_bench (built here against the release libraries) sends GiB through the
#    relay in-process on loopback vs direct, with read/write only, splice from the start, and
#    the default (splice after 256 KiB).
# 2. Small request/response: wrk -t1 -c50 -d10s against nginx in a throwaway namespace, direct
#    vs through devspaces-proxy (--workers 1) with the port opaque (raw relay, captured by a
#    nat OUTPUT REDIRECT; the proxy's UID 1337 exempt).
set -eu
build=$(cd "${1:-build/h-core-rel}" && pwd)
gib=${2:-4}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
chmod 755 "$tmp"
ns=tcpbench-$$
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

libs="proxy/libdevspaces_proxy.a proxy/libdevspaces_proxy_http.a proxy/libdevspaces_proxy_trace.a
  proxy/libdevspaces_proxy_routing.a proxy/libdevspaces_proxy_io.a proxy/libdevspaces_proxy_base.a
  libllhttp.a common/libdevspaces_common.a common/libdevspaces_boost.a"
set --
for l in $libs; do set -- "$@" "$build/$l"; done
g++ -std=c++20 -O2 -g -I"$src" -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION \
  -DBOOST_ASIO_NO_DEPRECATED -DBOOST_JSON_NO_LIB -DBOOST_CONTAINER_NO_LIB -DSPDLOG_COMPILED_LIB \
  -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -DFMT_SHARED -DDEVSPACES_SOURCE_DIR="\"$src\"" \
  -DDEVSPACES_BINARY_DIR="\"$build\"" -Wno-mismatched-new-delete \
  "$src/tests/integration/tcp_relay_bench.cpp" "$src/tests/support/test_support.cpp" "$@" \
  -lprometheus-cpp-core -lspdlog -lfmt -lcares -lgtest -lpthread -o "$tmp/tcp_relay_bench"
for mode in never 0 262144; do
  "$tmp/tcp_relay_bench" "$gib" "$mode" 3
done

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 198.18.0.1/32 dev lo
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
  uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 8080; location / { return 200 "hello\n"; } }
}
CONF
ip netns exec "$ns" nginx -c "$tmp/nginx.conf" -p "$tmp"
ip netns exec "$ns" iptables -w -t nat -A OUTPUT -p tcp -m owner --uid-owner 1337 -j RETURN
ip netns exec "$ns" iptables -w -t nat -A OUTPUT -p tcp -d 198.18.0.1 --dport 8080 \
  -j REDIRECT --to-ports 15001
ip netns exec "$ns" setpriv --reuid=1337 --regid=1337 --clear-groups -- "$build/proxy/devspaces-proxy" \
  --workers 1 --opaque-ports 8080 --admin-address 127.0.0.1:15090 --log-level warn &
proxy_pid=$!
i=0
until ip netns exec "$ns" curl -sf -o /dev/null http://127.0.0.1:15090/readyz; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "proxy not ready" >&2; exit 1; }; sleep 0.1
done
for round in 1 2; do
  echo "== direct: wrk -t1 -c50 -d10s http://127.0.0.1:8080/"
  ip netns exec "$ns" wrk -t1 -c50 -d10s --latency http://127.0.0.1:8080/ | grep -E "Requests/sec|50%|99%"
  echo "== raw relay: wrk -t1 -c50 -d10s http://198.18.0.1:8080/ (captured, opaque port)"
  ip netns exec "$ns" wrk -t1 -c50 -d10s --latency http://198.18.0.1:8080/ | grep -E "Requests/sec|50%|99%"
done
