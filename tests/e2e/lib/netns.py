"""Network-namespace helpers shared by the end-to-end tests (run as root).

Typical use:

    with netns.Lab("tcp_relay") as lab:
        pod = lab.namespace("pod")              # ip netns add tcp_relay-<pid>-pod, lo up
        client = lab.namespace("cli")
        lab.veth(client, "198.18.0.1/24", pod, "198.18.0.2/24")
        srv = pod.popen(["python3", "-m", "http.server", "8080"])
        pod.wait_port("127.0.0.1", 8080)
        out = client.run(["curl", "-s", "http://198.18.0.2:8080/"]).stdout

Everything the lab created (processes, namespaces, /etc/netns/<name> files) is removed when the
`with` block ends, also on failure. Names carry the test name and the pid so tests cannot collide.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

PROXY_UID = 1337


def run(args, check=True, **kw):
    """subprocess.run with text output captured; raises with stderr on failure when check."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    res = subprocess.run(args, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} exited {res.returncode}: {res.stderr or ''}{res.stdout or ''}")
    return res


def wait_until(cond, timeout=30.0, what="condition"):
    """Polls cond() until truthy or timeout; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Namespace:
    """One network namespace. Commands run inside it through `ip netns exec`."""

    def __init__(self, lab, name):
        self.lab = lab
        self.name = name
        run(["ip", "netns", "add", name])
        self.run(["ip", "link", "set", "lo", "up"])

    def argv(self, args):
        return ["ip", "netns", "exec", self.name, *map(str, args)]

    def run(self, args, check=True, **kw):
        """Runs a command inside the namespace and waits for it."""
        return run(self.argv(args), check=check, **kw)

    def popen(self, args, uid=None, **kw):
        """Starts a long-running process inside the namespace (killed when the lab closes).
        uid: run as that UID/GID (e.g. PROXY_UID) with no supplementary groups."""
        if uid is not None:
            # `ip netns exec` needs root, so drop privileges after entering the namespace.
            args = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *args]
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.argv(args), **kw)
        self.lab.processes.append(p)
        return p

    def hosts_file(self, text):
        """Writes /etc/netns/<name>/hosts: `ip netns exec` bind-mounts it over /etc/hosts."""
        d = f"/etc/netns/{self.name}"
        os.makedirs(d, exist_ok=True)
        self.lab.etc_dirs.append(d)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write(text)

    def iptables(self, *rules, v6=False):
        """Applies each rule (a string of iptables arguments) inside the namespace."""
        tool = "ip6tables" if v6 else "iptables"
        for rule in rules:
            self.run([tool, "-w", *rule.split()])

    def can_connect(self, host, port):
        """True when a TCP connect to host:port succeeds from inside the namespace."""
        code = ("import socket,sys\n"
                "try:\n"
                f"    socket.create_connection(({host!r}, {int(port)}), timeout=0.5).close()\n"
                "except OSError:\n"
                "    sys.exit(1)\n")
        return self.run(["python3", "-c", code], check=False).returncode == 0

    def wait_port(self, host, port, timeout=30.0):
        """Waits until something accepts on host:port inside the namespace."""
        wait_until(lambda: self.can_connect(host, port), timeout, f"{host}:{port} in {self.name}")


class Lab:
    """Owns namespaces, veth pairs and processes of one test; cleans all of it up on exit."""

    def __init__(self, test_name):
        self.prefix = f"{test_name[:12]}-{os.getpid()}"
        self.namespaces = []
        self.processes = []
        self.etc_dirs = []
        self._veths = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def namespace(self, suffix):
        ns = Namespace(self, f"{self.prefix}-{suffix}")
        self.namespaces.append(ns)
        return ns

    def veth(self, ns_a, addr_a, ns_b, addr_b):
        """Joins two namespaces with a veth pair; addr_* are CIDRs like 198.18.0.1/24.
        Returns the interface names (inside a, inside b)."""
        self._veths += 1
        tag = f"{os.getpid() % 100000}{self._veths}"
        a, b = f"va{tag}"[:15], f"vb{tag}"[:15]
        run(["ip", "link", "add", a, "netns", ns_a.name, "type", "veth", "peer", "name", b,
             "netns", ns_b.name])
        for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
            fam = "-6" if ":" in addr else "-4"
            ns.run(["ip", fam, "addr", "add", addr, "dev", dev] +
                   (["nodad"] if fam == "-6" else []))
            ns.run(["ip", "link", "set", dev, "up"])
        return a, b

    def close(self):
        for p in reversed(self.processes):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.processes:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        for ns in reversed(self.namespaces):
            # Kill anything still running in the namespace (e.g. children of our processes).
            pids = run(["ip", "netns", "pids", ns.name], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns.name], check=False)
        self.namespaces.clear()
        for d in self.etc_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.etc_dirs.clear()


def free_port():
    """A TCP port that is free on this host's loopback right now (for namespaces it is a guess
    that is good enough: each namespace has its own port space)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
