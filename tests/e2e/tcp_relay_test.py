#!/usr/bin/env python3
"""End to end, real kernel: a "pod" network namespace captured by `devspaces-proxy-init apply`,
devspaces-proxy running in it as UID 1337, and a peer
namespace as the outside world. Real clients (curl, python sockets) prove that captured
traffic arrives unchanged in both directions, that a server-first protocol works, that the
metrics count it, and that SIGTERM drains: open connections finish, then exit 0."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netns  # noqa: E402

BIN = os.path.join(os.environ.get("DEVSPACES_BIN_DIR", "build/asan"), "proxy", "devspaces-proxy")
POD, PEER = "198.18.0.2", "198.18.0.1"
POD6, PEER6 = "fd00:198:18::2", "fd00:198:18::1"

# Servers in the peer namespace (the "outside world"), each a few lines of python.
ECHO = r"""
import socket, sys, threading
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
def serve(c):
    while True:
        b = c.recv(65536)
        if not b: break
        c.sendall(b)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
BANNER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
def serve(c):
    c.sendall(b"220 banner.example ESMTP ready\r\n")
    data = b""
    while not data.endswith(b"\r\n"):
        b = c.recv(1024)
        if not b: break
        data += b
    c.sendall(b"221 bye " + data); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
# Client run inside the pod: sends random bytes through the capture, compares the echo. The
# first byte is a TLS record type: random bytes may start like an HTTP request line (a token and
# a space), which the proxy rightly hands to its HTTP parser.
ECHO_CLIENT = r"""
import os, socket, sys, threading
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
data = b"\x16" + os.urandom(int(sys.argv[3]) - 1)
c = socket.socket(fam); c.settimeout(20); c.connect((sys.argv[1], int(sys.argv[2])))
got = bytearray()
def rd():
    while True:
        b = c.recv(65536)
        if not b: break
        got.extend(b)
t = threading.Thread(target=rd); t.start()
c.sendall(data); c.shutdown(socket.SHUT_WR); t.join()
print("OK" if bytes(got) == data else f"MISMATCH sent={len(data)} got={len(got)}")
"""
BANNER_CLIENT = r"""
import socket, sys, time
c = socket.socket(); c.settimeout(10)
t0 = time.monotonic(); c.connect((sys.argv[1], int(sys.argv[2])))
banner = b""
while not banner.endswith(b"\r\n"):
    banner += c.recv(1024)
elapsed = time.monotonic() - t0
c.sendall(b"QUIT\r\n")
rest = b""
while True:
    b = c.recv(1024)
    if not b: break
    rest += b
print(repr(banner), repr(rest), f"{elapsed:.3f}")
"""


# An app that keeps calling out (new raw TCP and HTTP connections) until told to stop; counts
# the calls made after it saw the proxy draining (/readyz 503) and every failure.
CALLER = r"""
import socket, sys, threading, urllib.request, urllib.error
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
calls = draining_calls = errors = 0
last = ""
while not stop.is_set():
    try:
        draining = False
        try:
            urllib.request.urlopen("http://127.0.0.1:15090/readyz", timeout=5).read()
        except urllib.error.HTTPError as e:
            draining = e.code == 503
        c = socket.create_connection((sys.argv[1], 9007), timeout=10)
        c.sendall(b"\x16ping\n")
        got = b""
        while len(got) < 6:
            b = c.recv(64)
            if not b:
                break
            got += b
        c.close()
        if got != b"\x16ping\n":
            raise RuntimeError(f"echo answered {got!r}")
        page = urllib.request.urlopen(f"http://{sys.argv[1]}:9080/", timeout=10).read()
        if b"blob.bin" not in page:
            raise RuntimeError("http answer without the listing")
        calls += 1
        draining_calls += draining
        if calls == 1:
            print("calling", flush=True)
    except Exception as e:
        errors += 1
        last = repr(e)
print(f"calls={calls} draining_calls={draining_calls} errors={errors} {last}".strip(), flush=True)
"""


def metrics(pod):
    return pod.run(["curl", "-s", "http://127.0.0.1:15090/metrics"]).stdout


def metric(text, name, **labels):
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^devspaces_proxy_{name}\{{{re.escape(sel)}\}} (\S+)$", text, re.M)
    assert m, f"no {name}{{{sel}}} in metrics"
    return float(m.group(1))


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}", flush=True)


def apply_init(pod, v6):
    """The pod's capture rules, written by the real init (IPv6 too when the pod has it)."""
    init = os.path.join(os.path.dirname(os.path.dirname(BIN)), "init", "devspaces-proxy-init")
    pod.run([init, "apply", "--ipv6", "on" if v6 else "off", "--resolv-conf="])


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, iptables)")
        return 0
    with netns.Lab("tcp_relay") as lab:
        pod = lab.namespace("pod")
        peer = lab.namespace("peer")
        lab.veth(peer, f"{PEER}/24", pod, f"{POD}/24")
        have_v6 = True
        try:
            lab.veth(peer, f"{PEER6}/64", pod, f"{POD6}/64")
        except RuntimeError as e:
            print(f"# no IPv6 here ({e}); IPv6 checks skipped")
            have_v6 = False
        apply_init(pod, have_v6)

        # The outside world: an HTTP server, an echo server, a server-first banner server.
        www = os.path.join("/tmp", f"tcp_relay_www_{os.getpid()}")
        os.makedirs(www, exist_ok=True)
        body = os.urandom(300_000)
        with open(os.path.join(www, "blob.bin"), "wb") as f:
            f.write(body)
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer.popen(["python3", "-m", "http.server", "9080", "--bind", PEER, "-d", www], **quiet)
        peer.popen(["python3", "-c", ECHO, PEER, "9007"], **quiet)
        peer.popen(["python3", "-c", BANNER, PEER, "9025"], **quiet)
        if have_v6:
            peer.popen(["python3", "-c", ECHO, PEER6, "9007"], **quiet)
        # The app inside the pod, for inbound.
        pod.popen(["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "-d", www], **quiet)
        for host, port in ((PEER, 9080), (PEER, 9007), (PEER, 9025)):
            peer.wait_port(host, port)
        pod.wait_port("127.0.0.1", 8080)

        log = open(os.path.join("/tmp", f"tcp_relay_proxy_{os.getpid()}.log"), "w+")
        proxy = pod.popen([BIN, "--sniff-timeout", "2s", "--drain-timeout", "20s",
                           "--log-level", "debug"], uid=netns.PROXY_UID, stdout=log,
                          stderr=subprocess.STDOUT)
        try:
            netns.wait_until(lambda: pod.run(["curl", "-sf", "http://127.0.0.1:15090/readyz"],
                                             check=False).returncode == 0, 20, "proxy ready")
            run_checks(lab, pod, peer, body, have_v6, proxy)
        except BaseException:
            log.seek(0)
            print("---- proxy log (tail) ----")
            print("".join(log.readlines()[-60:]))
            raise
        finally:
            subprocess.run(["rm", "-rf", www])
    print("PASS")
    return 0


def run_checks(lab, pod, peer, body, have_v6, proxy):
    # 1. HTTP from the app to the outside (curl), captured by OUTPUT → 15001.
    r = pod.run(["curl", "-sf", "-o", "-", f"http://{PEER}:9080/blob.bin"],
                capture_output=True, text=False)
    check(r.stdout == body, "outbound curl body arrives unchanged (300 kB)")

    # 2. Binary echo, random bytes both ways.
    out = pod.run(["python3", "-c", ECHO_CLIENT, PEER, "9007", str(4 << 20)]).stdout.strip()
    check(out == "OK", "outbound binary echo of 4 MiB random bytes is byte-exact")
    if have_v6:
        out = pod.run(["python3", "-c", ECHO_CLIENT, PEER6, "9007", str(1 << 20)]).stdout.strip()
        check(out == "OK", "outbound IPv6 binary echo is byte-exact (IP6T_SO_ORIGINAL_DST)")

    # 3. Server-first protocol: the banner comes with no sniff delay (window is 2 s).
    out = pod.run(["python3", "-c", BANNER_CLIENT, PEER, "9025"]).stdout.strip()
    banner, rest, elapsed = out.rsplit(" ", 2)[0], out.split(" ")[-2], float(out.split(" ")[-1])
    check("220 banner.example ESMTP ready" in out and "221 bye QUIT" in out,
          "server-first banner and reply relayed")
    check(elapsed < 1.0, f"banner arrived after {elapsed:.3f}s, inside the 2 s sniff window")

    # 4. Inbound: the peer calls the app in the pod, captured by PREROUTING → 15006.
    r = peer.run(["curl", "-sf", "-o", "-", f"http://{POD}:8080/blob.bin"],
                 capture_output=True, text=False)
    check(r.stdout == body, "inbound curl body arrives unchanged")

    # 5. The metrics counted all of it.
    m = metrics(pod)
    check(metric(m, "connections_total", direction="outbound", protocol="http") >= 1,
          "connections_total{outbound,http} counted the curl")
    check(metric(m, "connections_total", direction="outbound", protocol="tcp") >= 2,
          "connections_total{outbound,tcp} counted echo and banner")
    check(metric(m, "connections_total", direction="inbound", protocol="http") >= 1,
          "connections_total{inbound,http} counted the inbound curl")
    check(metric(m, "bytes_total", direction="outbound", flow="rx") >= 4 << 20,
          "bytes_total{outbound,rx} counts the bytes sent")
    check(metric(m, "bytes_total", direction="outbound", flow="tx") >= (4 << 20) + len(body),
          "bytes_total{outbound,tx} counts the bytes received")
    check(metric(m, "bytes_total", direction="inbound", flow="tx") >= len(body),
          "bytes_total{inbound,tx} counts the inbound response")

    # 6. A connection aimed straight at the proxy's listener is not looped.
    r = pod.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                 "http://127.0.0.1:15001/"], check=False)
    check(r.stdout.strip() == "000", "a direct connection to the outbound listener is closed")

    # 7. Drain: an open captured connection survives SIGTERM and finishes, an app calling out
    # meanwhile sees no refused or reset connection; then exit 0 once idle.
    code = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], 9007), timeout=20)
c.sendall(b"one"); assert c.recv(3) == b"one"
print("open", flush=True)
sys.stdin.readline()
c.sendall(b"two"); got = c.recv(3)
c.shutdown(socket.SHUT_WR); rest = c.recv(10)
print("after", got.decode(), repr(rest), flush=True)
"""
    holder = pod.popen(["python3", "-c", code, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       text=True)
    check(holder.stdout.readline().strip() == "open", "a captured connection is open")
    caller = pod.popen(["python3", "-c", CALLER, PEER], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
    check(caller.stdout.readline().strip() == "calling", "the app is calling out")
    proxy.send_signal(signal.SIGTERM)
    netns.wait_until(lambda: pod.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                      "http://127.0.0.1:15090/readyz"],
                                     check=False).stdout.strip() == "503", 10, "/readyz 503")
    check(True, "/readyz turns 503 while draining")
    check(pod.can_connect(PEER, 9007), "new captured connections are still accepted while draining")
    check(proxy.poll() is None, "the proxy waits for the open connection")
    holder.stdin.write("go\n")
    holder.stdin.flush()
    line = holder.stdout.readline().strip()
    check(line == "after two b''", f"the open connection finished normally ({line})")
    check(proxy.poll() is None, "the proxy keeps serving while the app calls out")
    caller.stdin.write("stop\n")
    caller.stdin.flush()
    line = caller.stdout.readline().strip()
    counts = dict(kv.split("=") for kv in line.split()[:3])
    check(int(counts["errors"]) == 0, f"the app calling out during the drain saw no error ({line})")
    check(int(counts["draining_calls"]) > 0, f"the app's calls went on while draining ({line})")
    t0 = time.monotonic()
    rc = proxy.wait(timeout=15)
    elapsed = time.monotonic() - t0
    check(rc == 0, f"the proxy exited 0 once idle ({elapsed:.2f}s)")
    check(elapsed < 10, "it exited when idle, before the 20 s drain timeout")


if __name__ == "__main__":
    sys.exit(main())
