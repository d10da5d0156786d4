#!/bin/sh
# Small keep-alive requests through devspaces-proxy vs direct, with wrk, in a throwaway network
# namespace: nginx on :8080 answers "hello\n"; the client reaches it directly on 127.0.0.1:8080,
# or through the proxy on 198.18.0.1:8080 (nat OUTPUT REDIRECT to the outbound port, the proxy's
# own UID 1337 exempt). Needs root, wrk, nginx. Not a ctest test: a measurement.
#   sudo tests/integration/http_wrk_bench.sh [build-dir] [wrk args...]
set -eu
build=${1:-build/h-http-rel}
[ $# -gt 0 ] && shift
wrk_args=${*:--t1 -c50 -d10s --latency}
bin=$(cd "$build" && pwd)/proxy/devspaces-proxy
ns=httpbench-$$
tmp=$(mktemp -d)
chmod 755 "$tmp"
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

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
ip netns exec "$ns" setpriv --reuid=1337 --regid=1337 --clear-groups -- "$bin" --workers 1 \
  --admin-address 127.0.0.1:15090 --log-level warn &
proxy_pid=$!
i=0
until ip netns exec "$ns" curl -sf -o /dev/null http://127.0.0.1:15090/readyz; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "proxy not ready" >&2; exit 1; }; sleep 0.1
done
echo "== direct: wrk $wrk_args http://127.0.0.1:8080/"
ip netns exec "$ns" wrk $wrk_args http://127.0.0.1:8080/
echo "== through devspaces-proxy: wrk $wrk_args http://198.18.0.1:8080/"
ip netns exec "$ns" wrk $wrk_args http://198.18.0.1:8080/
