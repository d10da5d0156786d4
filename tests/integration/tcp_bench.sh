#!/bin/sh
# Splice modes of the raw TCP relay compared in-process (not a ctest test). Needs a release build:
#   cmake -S . -B build/h-core-rel -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVSPACES_TESTS=OFF
#   cmake --build build/h-core-rel --target devspaces-proxy
#   tests/integration/tcp_bench.sh build/h-core-rel [GiB]
# tcp_relay_bench (built here against the release libraries) sends GiB through the relay
# in-process on loopback vs direct, with read/write only, splice from the start, and the default
# (splice after 256 KiB). Proxy-against-peer comparisons (HTTP and TCP, with wrk cross-checks)
# are bench/run's.
set -eu
build=$(cd "${1:-build/h-core-rel}" && pwd)
gib=${2:-4}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
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

