"""Helpers for the init's end-to-end tests: network namespaces joined by a veth pair, a tiny
listener that answers with the SO_ORIGINAL_DST of each connection, and a client that runs as a
chosen UID/GID and prints who answered. Everything stays inside namespaces the test creates."""

import os
import re
import select
import socket
import struct
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

POD_V4, PEER_V4 = "198.18.0.2", "198.18.0.1"
POD_V6, PEER_V6 = "fd00:198:18::2", "fd00:198:18::1"


def init_binary():
    base = os.environ.get("DEVSPACES_BIN_DIR")
    if base:
        return os.path.join(base, "init", "devspaces-proxy-init")
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "..", "build", "asan", "init", "devspaces-proxy-init")


def sh(*args, check=True, input=None, env=None, timeout=60):
    r = subprocess.run(list(args), input=input, capture_output=True, text=True, env=env,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


class Netns:
    """A network namespace that is deleted (with its processes) on close."""

    def __init__(self, name):
        self.name = name
        self.procs = []
        sh("ip", "netns", "add", name)
        self.ip("link", "set", "lo", "up")

    def run(self, *args, **kw):
        return sh("ip", "netns", "exec", self.name, *args, **kw)

    def ip(self, *args):
        return self.run("ip", *args)

    def spawn(self, *args):
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs = []
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def make_pod_and_peer(prefix):
    """pod (198.18.0.2, fd00:198:18::2) and peer (.1, ::1) on a veth pair; pod's default
    routes point at the peer, as a pod's do at its node."""
    pod, peer = Netns(prefix + "p"), Netns(prefix + "q")
    try:
        sh("ip", "link", "add", "veth" + prefix[-6:], "netns", pod.name, "type", "veth", "peer",
           "name", "eth0", "netns", peer.name)
        pod.ip("link", "set", "veth" + prefix[-6:], "name", "eth0")
        for ns, v4, v6 in ((pod, POD_V4, POD_V6), (peer, PEER_V4, PEER_V6)):
            ns.ip("addr", "add", v4 + "/24", "dev", "eth0")
            ns.ip("-6", "addr", "add", v6 + "/64", "dev", "eth0", "nodad")
            ns.ip("link", "set", "eth0", "up")
        pod.ip("route", "add", "default", "via", PEER_V4)
        pod.ip("-6", "route", "add", "default", "via", PEER_V6)
    except Exception:
        pod.close()
        peer.close()
        raise
    return pod, peer


# A listener process: binds each "label,addr,port" spec, prints "ready", then answers every
# connection with "<label> orig=<original destination>\n" (orig=none when not redirected).
SERVER = r'''
import socket, struct, select, sys
socks = {}
for spec in sys.argv[1:]:
    label, addr, port = spec.rsplit(",", 2)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, int(port)))
    s.listen(16)
    socks[s] = (label, fam)
print("ready", flush=True)
while True:
    r, _, _ = select.select(list(socks), [], [])
    for s in r:
        label, fam = socks[s]
        c, _ = s.accept()
        try:
            if fam == socket.AF_INET:
                raw = c.getsockopt(socket.IPPROTO_IP, 80, 16)
                port, = struct.unpack("!H", raw[2:4])
                orig = socket.inet_ntop(socket.AF_INET, raw[4:8]) + ":" + str(port)
            else:
                raw = c.getsockopt(socket.IPPROTO_IPV6, 80, 28)
                port, = struct.unpack("!H", raw[2:4])
                orig = "[" + socket.inet_ntop(socket.AF_INET6, raw[8:24]) + "]:" + str(port)
        except OSError:
            orig = "none"
        c.sendall(f"{label} orig={orig}\n".encode())
        c.close()
'''

CLIENT = r'''
import socket, sys
host, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3)
if src != "-":
    s.bind((src, 0))
try:
    s.connect((host, port))
    print(s.makefile().readline().strip())
except OSError as e:
    print("error", e)
'''


def start_server(ns, specs, deadline_s=10):
    """Starts the listener in `ns` and waits for it to report ready (no fixed sleep)."""
    p = ns.spawn(PYTHON, "-c", SERVER, *specs)
    ready, _, _ = select.select([p.stdout], [], [], deadline_s)
    line = p.stdout.readline() if ready else ""
    if line.strip() != "ready":
        raise AssertionError(f"listener {specs} did not start: {p.stderr.read() if p.poll() is not None else ''}")
    return p


def connect(ns, host, port, uid=1000, gid=1000, source="-"):
    """Connects from `ns` as uid/gid and returns the first line the other side sent."""
    r = ns.run("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", PYTHON, "-c",
               CLIENT, host, str(port), source, check=False)
    return (r.stdout.strip() or r.stderr.strip())


def normalized_save(ns, tool):
    """iptables-save without comments and counters, and without tables that hold nothing
    (an empty built-in table created on first use may remain after cleanup, as the
    README's `cleanup` row says)."""
    return normalize_save_text(ns.run(tool).stdout)


def normalize_save_text(text):
    """See normalized_save."""
    tables, current = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            tables[current] = []
            continue
        tables[current].append(re.sub(r"\[\d+:\d+\]", "[0:0]", line))
    keep = {}
    for name, lines in tables.items():
        if any(not (re.fullmatch(r":\S+ ACCEPT \[0:0\]", l) or l == "COMMIT") for l in lines):
            keep[name] = lines
    return keep
