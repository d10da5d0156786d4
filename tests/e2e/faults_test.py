#!/usr/bin/env python3
"""Faults, end to end with the real kernel: a "pod" namespace captured by
`devspaces-proxy-init apply`, devspaces-proxy in it as UID 1337, and a peer namespace as the
outside world (HTTP origins, a DNS server, a trace collector). Each fault is injected for real
and must be named by a metric (and, where the proxy logs it, a log line) while other
connections keep being served:

  dns-down     nameserver unreachable: a routed request falls back to the original destination
  dns-slow     answers after 2.5 s: an unrouted request on another connection is not held up
  syn-drop     iptables DROP of the proxy's SYNs to one origin: 504 after --connect-timeout
  reset-body   origin resets in the middle of a response body: the client sees it cut short
  collector    --trace-upstream down: requests are served, records wait, then flow when it is up
  bad-reload   --spaces-file replaced by broken JSON: counted and logged, last good tree kept
  emfile       RLIMIT_NOFILE of the proxy lowered until accept fails: logged, an established
               relay keeps working, and new connections are served once descriptors are back
               (only with a build without sanitizers: the sanitizer runtime needs descriptors)

DEVSPACES_FAULTS_ONLY=name[,name] runs a subset."""

import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netns  # noqa: E402

BIN_DIR = os.environ.get("DEVSPACES_BIN_DIR", "build/asan")
BIN = os.path.join(BIN_DIR, "proxy", "devspaces-proxy")
INIT = os.path.join(BIN_DIR, "init", "devspaces-proxy-init")
POD, PEER = "198.18.0.2", "198.18.0.1"
ONLY = [x for x in os.environ.get("DEVSPACES_FAULTS_ONLY", "").split(",") if x]

ORIGIN = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(256)
def serve(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b:
                c.close(); return
            buf += b
        buf = buf[buf.index(b"\r\n\r\n") + 4:]
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
# Sends a head promising 100000 bytes, 1000 of them, then an RST.
RESETTER = r"""
import socket, struct, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
def serve(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = c.recv(65536)
        if not b: return
        buf += b
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
ECHO = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
# A DNS server for one name (A record), answering after a delay.
DNS = r"""
import socket, struct, sys, threading, time
name, addr, delay = sys.argv[2].lower(), socket.inet_aton(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 53))
def answer(q, peer):
    time.sleep(delay)
    qid, flags = struct.unpack(">HH", q[:4])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    if ".".join(labels) == name and qtype == 1:
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + addr
        s.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr, peer)
    elif ".".join(labels) == name:  # the name exists, no record of that type
        s.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, peer)
    else:
        s.sendto(struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, peer)
while True:
    q, peer = s.recvfrom(512)
    print("query", flush=True)
    threading.Thread(target=answer, args=(q, peer), daemon=True).start()
"""
COLLECTOR = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); self.rfile.read(n)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""
# Holds N connections through the capture, each with a partial request head, until stdin closes.
HOLDER = r"""
import socket, sys
conns = []
for i in range(int(sys.argv[3])):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        c.sendall(b"GET / HTTP/1.1\r\n")
        conns.append(c)
    except OSError:
        break
print(len(conns), flush=True)
sys.stdin.read()
"""
# One echo exchange on an already open connection, driven by lines on stdin.
ECHO_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
for line in sys.stdin:
    msg = line.strip().encode()
    c.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = c.recv(65536)
        if not b: break
        got += b
    print("OK" if got == msg else "BAD", flush=True)
"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}", flush=True)


class Env:
    def __init__(self, lab, pod, peer, proxy, log_path, spaces_path):
        self.lab, self.pod, self.peer, self.proxy = lab, pod, peer, proxy
        self.log_path, self.spaces_path = log_path, spaces_path
        self.dns = None

    def metric(self, name, **labels):
        res = self.pod.run(["curl", "-s", "--max-time", "5", "http://127.0.0.1:15090/metrics"],
                           check=False)
        for line in res.stdout.splitlines():
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] != f"devspaces_proxy_{name}":
                continue
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                return float(value)
        return 0.0

    def log_has(self, pattern):
        with open(self.log_path, errors="replace") as f:
            return re.search(pattern, f.read()) is not None

    def curl(self, url, *extra, timeout=10):
        """(http status, body bytes, curl exit code, seconds) of a request from the app side."""
        t0 = time.monotonic()
        res = self.pod.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time",
                            str(timeout), *extra, url], check=False, text=False)
        body, _, code = res.stdout.rpartition(b"\n")
        return int(code or 0), body, res.returncode, time.monotonic() - t0

    def healthy(self):
        code, body, _, elapsed = self.curl(f"http://{PEER}:8080/healthy", timeout=5)
        return code == 200 and body == b"ok", elapsed

    def start_dns(self, delay):
        if self.dns is not None:
            self.dns.kill()
            self.dns.wait()
        self.dns = self.peer.popen(["python3", "-c", DNS, PEER, "svc.azureuser.svc.cluster.local",
                                    PEER, str(delay)], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        netns.wait_until(lambda: self.peer.run(["ss", "-lun", f"sport = :53"]).stdout.count(
            PEER) > 0, 5, "dns server")


def fault_dns_down(e):
    before = e.metric("dns_lookups_total", result="error")
    code, body, _, _ = e.curl(f"http://{PEER}:8080/", "-H", "Host: svc", "-H",
                              "azds-route-as: azureuser")
    check(code == 200 and body == b"ok",
          "dns-down: the routed request falls back to the original destination")
    check(e.metric("dns_lookups_total", result="error") > before,
          "dns-down: dns_lookups_total{result=error} counts the failed lookup")
    check(e.healthy()[0], "dns-down: other requests are served")


def routed_in_background(e, path, host="svc"):
    return e.pod.popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                        "--max-time", "20", "-H", f"Host: {host}", "-H",
                        "azds-route-as: azureuser", f"http://{PEER}:8080{path}"],
                       stdout=subprocess.PIPE, text=True)


def fault_dns_slow(e):
    # Slow but inside the resolver's per-try timeout: the answer is used.
    e.start_dns(0.3)
    found = e.metric("dns_lookups_total", result="found")
    routed = routed_in_background(e, "/slow")
    check(e.dns.stdout.readline().strip() == "query", "dns-slow: the routed request is looking up")
    ok, elapsed = e.healthy()
    check(ok and elapsed < 0.6 and routed.poll() is None,
          f"dns-slow: an unrouted request is answered in {elapsed:.2f} s while the lookup waits")
    out, _ = routed.communicate(timeout=25)
    check(out.split()[0] == "200", f"dns-slow: the routed request completes ({out.split()[1]} s)")
    check(e.metric("dns_lookups_total", result="found") > found,
          "dns-slow: dns_lookups_total{result=found} counts the slow answer")
    # Slower than the lookup timeout: the request goes to the original destination in bounded time.
    e.start_dns(5.0)
    errors = e.metric("dns_lookups_total", result="error")
    # (another name: the first answer is cached)
    routed = routed_in_background(e, "/slower", host="svc2")
    check(e.dns.stdout.readline().strip() == "query", "dns-slow: a lookup goes to the 5 s server")
    ok, elapsed = e.healthy()
    check(ok and routed.poll() is None,
          f"dns-slow: with a 5 s DNS an unrouted request is answered in {elapsed:.2f} s")
    out, _ = routed.communicate(timeout=25)
    code, took = out.split()
    check(code == "200" and float(took) < 4.5,
          f"dns-slow: past the lookup timeout the request falls back in {float(took):.2f} s")
    check(e.metric("dns_lookups_total", result="error") > errors,
          "dns-slow: dns_lookups_total{result=error} counts the timed-out lookup")
    e.dns.kill()
    e.dns = None


def fault_syn_drop(e):
    e.pod.iptables(f"-A OUTPUT -p tcp -d {PEER} --dport 8082 -m owner --uid-owner "
                   f"{netns.PROXY_UID} -j DROP")
    before = e.metric("upstream_connect_failures_total", direction="outbound", reason="timeout")
    dropped = e.pod.popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                           "10", f"http://{PEER}:8082/"], stdout=subprocess.PIPE, text=True)
    netns.wait_until(lambda: e.metric("connections_active", direction="outbound") >= 1, 5,
                     "the dropped connection in the proxy")
    ok, elapsed = e.healthy()
    check(ok and dropped.poll() is None,
          f"syn-drop: another request is answered ({elapsed:.2f} s) while the connect hangs")
    out, _ = dropped.communicate(timeout=15)
    check(out.strip() == "504", "syn-drop: the client gets 504 after --connect-timeout")
    check(e.metric("upstream_connect_failures_total", direction="outbound",
                   reason="timeout") > before,
          "syn-drop: upstream_connect_failures_total{reason=timeout} counts it")


def fault_reset_body(e):
    before = e.metric("http_requests_total", direction="outbound", method="GET",
                      code_class="error")
    code, body, rc, _ = e.curl(f"http://{PEER}:8081/big")
    check(code == 200 and rc != 0 and len(body) < 100000,
          f"reset-body: the response is cut short for the client (curl exit {rc}, "
          f"{len(body)} of 100000 bytes)")
    netns.wait_until(lambda: e.metric("http_requests_total", direction="outbound", method="GET",
                                      code_class="error") > before, 5, "error counted")
    check(True, "reset-body: http_requests_total{code_class=error} counts the broken exchange")
    check(e.healthy()[0], "reset-body: other requests are served")


def fault_collector(e):
    for _ in range(5):
        e.healthy()
    check(e.metric("trace_records_total", outcome="recorded") >= 5,
          "collector: records are made while the collector is down")
    check(e.metric("trace_records_total", outcome="sent") == 0,
          "collector: nothing counts as sent while it is down")
    netns.wait_until(lambda: e.log_has(r"trace upstream \S+ failed"), 10, "uploader log line")
    check(True, "collector: the log names the failing trace upstream")
    e.peer.popen(["python3", "-c", COLLECTOR, PEER, "9411"], stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    e.peer.wait_port(PEER, 9411)
    netns.wait_until(lambda: e.metric("trace_records_total", outcome="sent") > 0, 30,
                     "records sent")
    check(True, "collector: records flow once the collector is up")


def replace_file(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def fault_bad_reload(e):
    before = e.metric("config_reloads_total", result="error")
    with open(e.spaces_path) as f:
        good = f.read()
    replace_file(e.spaces_path, '{"spaces": {"azureuser": {"parent": ')
    netns.wait_until(lambda: e.metric("config_reloads_total", result="error") > before, 15,
                     "reload error counted")
    check(True, "bad-reload: config_reloads_total{result=error} counts the broken file")
    check(e.log_has("space tree reload failed, keeping the last good tree"),
          "bad-reload: the log says the last good tree stays")
    e.start_dns(0)
    code, _, _, _ = e.curl(f"http://{PEER}:8080/", "-H", "Host: svc", "-H",
                           "azds-route-as: azureuser")
    check(code == 200 and e.metric("route_decisions_total", decision="own") >= 1,
          "bad-reload: routing by the last good tree goes on")
    e.dns.kill()
    e.dns = None
    # The good file back: a proxy started after this fault (emfile) reads it at start.
    ok_before = e.metric("config_reloads_total", result="ok")
    replace_file(e.spaces_path, good)
    netns.wait_until(lambda: e.metric("config_reloads_total", result="ok") > ok_before, 15,
                     "good file reloaded")


def fault_emfile(e):
    # The proxy runs again under a low RLIMIT_NOFILE (a process may lower its own limit; changing
    # another process's needs CAP_SYS_RESOURCE, which a container may not have).
    e.proxy.kill()
    e.proxy.wait()
    e.proxy = e.start_proxy(["prlimit", "--nofile=96:96", "--"])
    echo = e.pod.popen(["python3", "-c", ECHO_CLIENT, PEER, "9007"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)

    def echo_once(msg):
        echo.stdin.write(msg + "\n")
        echo.stdin.flush()
        return echo.stdout.readline().strip() == "OK"

    check(echo_once("before"), "emfile: an established raw TCP relay works")
    holder = e.pod.popen(["python3", "-c", HOLDER, PEER, "8080", "200"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    netns.wait_until(lambda: e.log_has(r"accept on outbound listener failed: Too many open files"),
                     15, "EMFILE log line")
    check(True, "emfile: the log names the failed accept (Too many open files)")
    check(echo_once("during"), "emfile: the established relay keeps working without descriptors")
    holder.stdin.close()
    holder.wait(timeout=10)
    netns.wait_until(lambda: e.healthy()[0], 20, "served again")
    check(True, "emfile: new connections are served once descriptors are back")
    check(e.log_has(r"accept on outbound listener recovered"), "emfile: the recovery is logged")
    echo.stdin.close()
    echo.wait(timeout=10)


FAULTS = [("dns-down", fault_dns_down), ("dns-slow", fault_dns_slow),
          ("syn-drop", fault_syn_drop), ("reset-body", fault_reset_body),
          ("collector", fault_collector), ("bad-reload", fault_bad_reload),
          ("emfile", fault_emfile)]


def sanitized():
    try:
        with open(os.path.join(BIN_DIR, "CMakeCache.txt")) as f:
            return "DEVSPACES_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, iptables)")
        return 0
    with netns.Lab("faults") as lab, tempfile.TemporaryDirectory() as tmp:
        pod = lab.namespace("pod")
        peer = lab.namespace("peer")
        lab.veth(peer, f"{PEER}/24", pod, f"{POD}/24")
        pod.run([INIT, "apply", "--ipv6", "off", "--resolv-conf="])
        etc = f"/etc/netns/{pod.name}"
        os.makedirs(etc, exist_ok=True)
        lab.etc_dirs.append(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write(f"nameserver {PEER}\noptions timeout:5 attempts:1\n")
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer.popen(["python3", "-c", ORIGIN, PEER, "8080"], **quiet)
        peer.popen(["python3", "-c", RESETTER, PEER, "8081"], **quiet)
        peer.popen(["python3", "-c", ORIGIN, PEER, "8082"], **quiet)
        peer.popen(["python3", "-c", ECHO, PEER, "9007"], **quiet)
        for port in (8080, 8081, 8082, 9007):
            peer.wait_port(PEER, port)
        spaces = os.path.join(tmp, "spaces.json")
        with open(spaces, "w") as f:
            f.write('{"spaces": {"default": {}, "azureuser": {"parent": "default"}}}')
        os.chmod(tmp, 0o755)
        os.chmod(spaces, 0o644)
        log_path = os.path.join(tmp, "proxy.log")
        log = open(log_path, "w")
        env = Env(lab, pod, peer, None, log_path, spaces)

        def start_proxy(prefix=()):
            p = pod.popen([*prefix, BIN, "--space", "azureuser", "--spaces-file", spaces,
                           "--resolver", "dns", "--connect-timeout", "700ms",
                           "--sniff-timeout", "200ms",
                           "--trace-upstream", f"http://{PEER}:9411/ingest",
                           "--log-level", "debug"], uid=netns.PROXY_UID, stdout=log,
                          stderr=subprocess.STDOUT)
            netns.wait_until(lambda: pod.run(["curl", "-sf", "http://127.0.0.1:15090/readyz"],
                                             check=False).returncode == 0, 20, "proxy ready")
            return p

        env.start_proxy = start_proxy
        try:
            env.proxy = start_proxy()
            proxy = env.proxy
            check(env.healthy()[0], "baseline: a request through the capture is answered")
            for name, fn in FAULTS:
                if ONLY and name not in ONLY:
                    continue
                if name == "emfile" and sanitized():
                    print("# emfile: skipped in a sanitizer build (scripts/test runs it in a "
                          "release build)")
                    continue
                fn(env)
            check(env.proxy.poll() is None, "the proxy is still running after every fault")
        except BaseException:
            log.flush()
            with open(log_path, errors="replace") as f:
                print("---- proxy log (tail) ----")
                print("".join(f.readlines()[-60:]))
            raise
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
