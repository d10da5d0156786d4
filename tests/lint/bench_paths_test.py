#!/usr/bin/env python3
"""bench/run writes reports and raw JSON without machine paths: its repo_relative() turns the
checkout, the build directory and callgrind's absolute source paths of other checkouts into
repository-relative paths, and leaves everything else alone."""
import importlib.machinery
import importlib.util
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(root, "bench", "run"))
spec = importlib.util.spec_from_loader("bench_run", loader)
bench = importlib.util.module_from_spec(spec)
loader.exec_module(bench)
bench.set_build_dir(os.path.join(root, "build", "release"))

cases = [
    (f"{root}/proxy/server.cpp:run", "proxy/server.cpp:run"),
    (f"main() [{root}/build/release/proxy/devspaces-proxy]",
     "main() [build/release/proxy/devspaces-proxy]"),
    ('"build_dir": "' + root + '/build/release"', '"build_dir": "build/release"'),
    ("feed() [/tmp/fresh/build/release/proxy/devspaces-proxy]",
     "feed() [build/release/proxy/devspaces-proxy]"),
    ("/work/main/proxy/http/session.cpp:exchange", "proxy/http/session.cpp:exchange"),
    ("/root/src/devspaces/common/options.cpp:x", "common/options.cpp:x"),
    ("/usr/include/boost/asio/impl/io_context.ipp:run", "/usr/include/boost/asio/impl/io_context.ipp:run"),
    ("./misc/../sysdeps/unix/sysv/linux/x86_64/clone.S:clone", "./misc/../sysdeps/unix/sysv/linux/x86_64/clone.S:clone"),
    ("56,428,463 ( 8.02%)  proxy/http/parser.cpp:scan_head", "56,428,463 ( 8.02%)  proxy/http/parser.cpp:scan_head"),
    ("write_string<true>(boost::json::detail::stream&) [/work/benchclo\\n 85,392,807",
     "write_string<true>(boost::json::detail::stream&) […\\n 85,392,807"),
]
failed = 0
for given, want in cases:
    got = bench.repo_relative(given)
    if got != want:
        print(f"FAIL: {given!r}\n  got  {got!r}\n  want {want!r}")
        failed += 1
print(f"{len(cases) - failed}/{len(cases)} paths made repository-relative as expected")
sys.exit(1 if failed else 0)
