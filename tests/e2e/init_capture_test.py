#!/usr/bin/env python3
"""devspaces-proxy-init against the real kernel, for iptables-legacy and iptables-nft: apply,
rerun (no-op), drift then apply (reconciled), verify, who answers each kind of connection
(captured, proxy UID/GID, loopback, passthrough source, excluded port, DNS), cleanup (save equal
to before), and rollback when one family fails. Runs as root in namespaces it creates."""

import fcntl
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import init_netns as t  # noqa: E402

BIN = t.init_binary()
RESOLV = ("search azureuser.svc.cluster.local svc.cluster.local cluster.local\n"
          f"nameserver {t.PEER_V4}\noptions ndots:5\n")
failures = []


def check(cond, what):
    if cond:
        print(f"ok    {what}")
    else:
        print(f"FAIL  {what}")
        failures.append(what)


def answered(got, want):
    """`want` is "<label> orig=<addr>" for a redirected connection, or just the label of the
    listener that must answer directly (its orig= is then the address it was reached at)."""
    return got == want if " orig=" in want else got.split(" ")[0] == want


def init(ns, *args, path=None, env=None):
    pre = [f"{k}={v}" for k, v in (env or {}).items()] + ([f"PATH={path}"] if path else [])
    if pre:
        return ns.run("/usr/bin/env", *pre, BIN, *args, check=False)
    return ns.run(BIN, *args, check=False)


def has_v6_passthrough(ns):
    return "::6/128" in ns.ip("-6", "addr", "show", "dev", "lo").stdout


def run_backend(backend):
    other = "nft" if backend == "legacy" else "legacy"
    save4, save6 = f"iptables-{backend}-save", f"ip6tables-{backend}-save"
    ipt = f"iptables-{backend}"
    pod, peer = t.make_pod_and_peer(f"ic{os.getpid() % 100000}{backend[0]}")
    fd, resolv = tempfile.mkstemp(prefix="init-e2e-resolv-")
    os.write(fd, RESOLV.encode())
    os.close(fd)
    try:
        flags = ["--iptables", backend, "--ipv6", "on", "--resolv-conf", resolv, "--space",
                 "azureuser", "--parent-spaces", "default", "--exclude-inbound-ports", "15090,2222"]
        before4, before6 = t.normalized_save(pod, save4), t.normalized_save(pod, save6)
        inode = os.stat(resolv).st_ino

        r = init(pod, "apply", *flags)
        check(r.returncode == 0, f"[{backend}] apply exits 0 ({r.stderr.strip()})")
        applied4, applied6 = t.normalized_save(pod, save4), t.normalized_save(pod, save6)
        check(":DEVSPACES_OUTPUT - [0:0]" in applied4.get("nat", []), f"[{backend}] v4 chains written")
        check(":DEVSPACES_OUTPUT - [0:0]" in applied6.get("nat", []), f"[{backend}] v6 chains written")
        check("DEVSPACES" not in pod.run(f"iptables-{other}-save").stdout,
              f"[{backend}] nothing written through iptables-{other}")
        printed = init(pod, "print", *flags).stdout
        check(all(l in printed for l in applied4["nat"] if "DEVSPACES" in l),
              f"[{backend}] every saved rule is in the print output")
        with open(resolv) as f:
            content = f.read()
        check("search azureuser.svc.cluster.local default.svc.cluster.local svc.cluster.local "
              "cluster.local\n" in content, f"[{backend}] resolv.conf search list")
        check(os.stat(resolv).st_ino == inode, f"[{backend}] resolv.conf edited in place")
        check(has_v6_passthrough(pod), f"[{backend}] ::6 added to lo")

        r = init(pod, "apply", *flags)
        check(r.returncode == 0 and "nothing to do" in r.stdout, f"[{backend}] rerun is a no-op")
        r = init(pod, "apply", *[f if f != backend else "auto" for f in flags])
        check(r.returncode == 0 and f"iptables-{backend}" in r.stdout and "nothing to do" in r.stdout,
              f"[{backend}] --iptables auto finds the backend in use ({r.stdout.splitlines()[:1]})")
        check(t.normalized_save(pod, save4) == applied4 and t.normalized_save(pod, save6) == applied6,
              f"[{backend}] reruns leave iptables-save unchanged")
        with open(resolv) as f:
            check(f.read() == content, f"[{backend}] rerun leaves resolv.conf unchanged")

        # Drift: a rule deleted, one added, a stale chain, a duplicate jump; v6 chain flushed.
        pod.run(ipt, "-t", "nat", "-D", "DEVSPACES_OUTPUT", "1")
        pod.run(ipt, "-t", "nat", "-A", "DEVSPACES_INBOUND", "-p", "tcp", "--dport", "1", "-j", "RETURN")
        pod.run(ipt, "-t", "nat", "-N", "DEVSPACES_STALE")
        pod.run(ipt, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "DEVSPACES_OUTPUT")
        pod.run(f"ip6tables-{backend}", "-t", "nat", "-F", "DEVSPACES_REDIRECT")
        r = init(pod, "verify", *flags)
        check(r.returncode == 3, f"[{backend}] verify exits 3 on drift (got {r.returncode})")
        r = init(pod, "apply", *flags)
        check(r.returncode == 0 and "replaced drifted rules" in r.stdout, f"[{backend}] drift reconciled")
        check(t.normalized_save(pod, save4) == applied4 and t.normalized_save(pod, save6) == applied6,
              f"[{backend}] after reconcile iptables-save equals the first apply (no guardrails left)")

        r = init(pod, "verify", *flags)
        check(r.returncode == 0, f"[{backend}] verify exits 0 ({r.stdout.strip()} {r.stderr.strip()})")
        for what in ("ipv4 outbound: ok", "ipv6 outbound: ok", "ipv4 inbound (proxy to own pod address): ok",
                     "ipv6 inbound (proxy to own pod address): ok"):
            check(what in r.stdout, f"[{backend}] verify: {what}")

        # Who answers: listeners in the pod stand in for the proxy and the app.
        t.start_server(pod, ["proxy-out,127.0.0.1,15001", "proxy-out,::1,15001",
                             "proxy-in,0.0.0.0,15006", "proxy-in,::,15006",
                             "app,0.0.0.0,2222", "app,::,2222", "app8080,0.0.0.0,8080",
                             "app8080,::,8080", "app-lo,127.0.0.1,7000", "app-lo,::1,7000"])
        t.start_server(peer, ["peer,0.0.0.0,9000", "peer,::,9000", "peer-dns,0.0.0.0,53"])
        cases = [
            ("app outbound v4 is captured", ("198.18.1.5", 8080), {}, "proxy-out orig=198.18.1.5:8080"),
            ("app outbound v6 is captured", ("fd00:198:18:1::5", 8080), {},
             "proxy-out orig=[fd00:198:18:1::5]:8080"),
            ("app to a reachable peer is captured", (t.PEER_V4, 9000), {}, f"proxy-out orig={t.PEER_V4}:9000"),
            ("proxy UID is not captured", (t.PEER_V4, 9000), {"uid": 1337, "gid": 1000}, "peer"),
            ("proxy GID is not captured", (t.PEER_V4, 9000), {"uid": 1000, "gid": 1337}, "peer"),
            ("proxy UID v6 is not captured", (t.PEER_V6, 9000), {"uid": 1337, "gid": 1337}, "peer"),
            ("app to 127.0.0.1 is not captured", ("127.0.0.1", 7000), {}, "app-lo"),
            ("app to ::1 is not captured", ("::1", 7000), {}, "app-lo"),
            ("DNS to the nameserver is left alone", (t.PEER_V4, 53), {}, "peer-dns"),
            ("proxy to own pod IP is inbound", (t.POD_V4, 8080), {"uid": 1337, "gid": 1337},
             f"proxy-in orig={t.POD_V4}:8080"),
            ("proxy to own pod IPv6 is inbound", (t.POD_V6, 8080), {"uid": 1337, "gid": 1337},
             f"proxy-in orig=[{t.POD_V6}]:8080"),
            ("passthrough from 127.0.0.6 reaches the app", (t.POD_V4, 8080),
             {"uid": 1337, "gid": 1337, "source": "127.0.0.6"}, "app8080"),
            ("passthrough from ::6 reaches the app", (t.POD_V6, 8080),
             {"uid": 1337, "gid": 1337, "source": "::6"}, "app8080"),
        ]
        for what, (host, port), kw, want in cases:
            got = t.connect(pod, host, port, **kw)
            check(answered(got, want), f"[{backend}] {what}: {got!r}")
        inbound = [
            ("inbound v4 is captured", (t.POD_V4, 8080), f"proxy-in orig={t.POD_V4}:8080"),
            ("inbound v6 is captured", (t.POD_V6, 8080), f"proxy-in orig=[{t.POD_V6}]:8080"),
            ("excluded inbound port reaches the app", (t.POD_V4, 2222), "app"),
            ("excluded inbound port v6 reaches the app", (t.POD_V6, 2222), "app"),
        ]
        for what, (host, port), want in inbound:
            got = t.connect(peer, host, port, uid=0, gid=0)
            check(answered(got, want), f"[{backend}] {what}: {got!r}")
        for p in pod.procs:
            p.kill()
            p.wait()
        pod.procs = []

        r = init(pod, "cleanup", *flags)
        check(r.returncode == 0, f"[{backend}] cleanup exits 0 ({r.stderr.strip()})")
        check(t.normalized_save(pod, save4) == before4, f"[{backend}] v4 iptables-save equals before")
        check(t.normalized_save(pod, save6) == before6, f"[{backend}] v6 iptables-save equals before")
        with open(resolv) as f:
            check(f.read() == RESOLV, f"[{backend}] resolv.conf restored")
        check(os.stat(resolv).st_ino == inode, f"[{backend}] resolv.conf cleaned in place")
        check(not has_v6_passthrough(pod), f"[{backend}] ::6 removed from lo")
        r = init(pod, "cleanup", *flags)
        check(r.returncode == 0, f"[{backend}] second cleanup exits 0")
        check(answered(t.connect(pod, t.PEER_V4, 9000), "peer"), f"[{backend}] after cleanup nothing is captured")
        r = init(pod, "verify", *flags)
        check(r.returncode == 3, f"[{backend}] verify exits 3 without rules (got {r.returncode})")
    finally:
        os.unlink(resolv)
        pod.close()
        peer.close()


def run_rollback():
    """ip6tables-restore fails after the IPv4 rules went in: apply exits 1 and takes them out."""
    pod = t.Netns(f"icr{os.getpid() % 100000}")
    bindir = tempfile.mkdtemp(prefix="init-e2e-bin-")
    try:
        for tool in ("iptables-nft", "iptables-nft-save", "iptables-nft-restore",
                     "ip6tables-nft", "ip6tables-nft-save", "iptables-legacy", "iptables-legacy-save",
                     "ip6tables-legacy", "ip6tables-legacy-save"):
            os.symlink(f"/usr/sbin/{tool}", os.path.join(bindir, tool))
        broken = os.path.join(bindir, "ip6tables-nft-restore")
        with open(broken, "w") as f:
            f.write("#!/bin/sh\necho 'ip6tables-restore: line 2 failed: No chain/target/match by that name.' >&2\nexit 1\n")
        os.chmod(broken, 0o755)
        before = t.normalized_save(pod, "iptables-nft-save")
        r = init(pod, "apply", "--iptables", "nft", "--ipv6", "on", "--resolv-conf", "", path=bindir)
        check(r.returncode == 1, f"[rollback] apply exits 1 when ip6tables-restore fails (got {r.returncode})")
        check("ip6tables-nft-restore" in r.stderr and "No chain/target/match" in r.stderr,
              f"[rollback] the error names the binary and its message: {r.stderr.strip()[:160]}")
        check(t.normalized_save(pod, "iptables-nft-save") == before, "[rollback] no IPv4 rules left behind")
        r = init(pod, "apply", "--resolv-conf", "", path="/nonexistent")
        check(r.returncode == 1 and "iptables" in r.stderr, f"[rollback] missing binaries: exit 1, named")
        r = pod.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "apply",
                    "--resolv-conf", "", check=False)
        check(r.returncode == 1 and "NET_ADMIN" in r.stderr and "NET_RAW" in r.stderr,
              "[caps] without capabilities: exit 1, naming NET_ADMIN and NET_RAW")
        r = init(pod, "apply", "--no-such-flag")
        check(r.returncode == 2, "[usage] unknown flag exits 2")
        r = init(pod, "--help")
        check(r.returncode == 0 and "--exclude-outbound-cidrs" in r.stdout, "[usage] --help lists the flags")
    finally:
        for name in os.listdir(bindir):
            os.unlink(os.path.join(bindir, name))
        os.rmdir(bindir)
        pod.close()


def run_bind_mounted_resolv_conf():
    """/etc/resolv.conf as a bind mount (ip netns exec mounts /etc/netns/<ns>/resolv.conf over
    it, as the container runtime does): apply and cleanup edit it in place through the mount."""
    pod = t.Netns(f"icm{os.getpid() % 100000}")
    etc = f"/etc/netns/{pod.name}"
    os.makedirs(etc, exist_ok=True)
    try:
        with open(f"{etc}/resolv.conf", "w") as f:
            f.write(RESOLV)
        r = init(pod, "apply", "--iptables", "nft", "--space", "azureuser", "--parent-spaces", "default")
        check(r.returncode == 0, f"[bind mount] apply exits 0 ({r.stderr.strip()})")
        with open(f"{etc}/resolv.conf") as f:
            check("search azureuser.svc.cluster.local default.svc.cluster.local" in f.read(),
                  "[bind mount] the mounted resolv.conf was edited in place")
        r = init(pod, "cleanup")
        with open(f"{etc}/resolv.conf") as f:
            check(r.returncode == 0 and f.read() == RESOLV, "[bind mount] cleanup restored it")
    finally:
        pod.close()
        for name in os.listdir(etc):
            os.unlink(os.path.join(etc, name))
        os.rmdir(etc)


def run_ipv6_auto():
    """--ipv6 auto follows the namespace: IPv6 up → both families; IPv6 disabled → IPv4 only,
    and --ipv6 on then fails rather than pretending."""
    pod = t.Netns(f"ic6{os.getpid() % 100000}")
    try:
        r = init(pod, "apply", "--iptables", "nft", "--resolv-conf", "")
        check(r.returncode == 0 and "ipv6: applied" in r.stdout, "[ipv6 auto] IPv6 up: IPv6 rules applied")
        init(pod, "cleanup", "--resolv-conf", "")
        pod.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.lo.disable_ipv6=1")
        r = init(pod, "apply", "--iptables", "nft", "--resolv-conf", "")
        check(r.returncode == 0 and "ipv4: applied" in r.stdout and "ipv6" not in r.stdout,
              "[ipv6 auto] IPv6 disabled: IPv4 rules only")
        r = init(pod, "apply", "--iptables", "nft", "--resolv-conf", "", "--ipv6", "on")
        check(r.returncode == 1 and "no IPv6" in r.stderr, "[ipv6 on] IPv6 disabled: exit 1, said so")
    finally:
        pod.close()


def run_lock():
    """A held xtables lock never hangs apply: it fails within --command-timeout, naming the lock."""
    pod = t.Netns(f"icl{os.getpid() % 100000}")
    fd, lock = tempfile.mkstemp(prefix="init-e2e-lock-")
    fcntl.flock(fd, fcntl.LOCK_EX)  # held by this test process, as a stuck iptables would
    try:
        started = time.monotonic()
        r = init(pod, "apply", "--iptables", "legacy", "--resolv-conf", "", "--command-timeout", "2s",
                 env={"XTABLES_LOCKFILE": lock})
        took = time.monotonic() - started
        check(r.returncode == 1, f"[lock] apply exits 1 while the lock is held (got {r.returncode})")
        check("xtables lock" in r.stderr and lock in r.stderr, f"[lock] error names the lock: {r.stderr.strip()[:200]}")
        check(took < 20, f"[lock] gave up in {took:.1f}s")
        fcntl.flock(fd, fcntl.LOCK_UN)
        r = init(pod, "apply", "--iptables", "legacy", "--resolv-conf", "", env={"XTABLES_LOCKFILE": lock})
        check(r.returncode == 0 and lock in r.stdout, "[lock] apply works once the lock is free, logs the lock file")
    finally:
        os.close(fd)
        os.unlink(lock)
        pod.close()


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, iptables)")
        return 0
    if not os.path.exists(BIN):
        print(f"FAIL: {BIN} not built")
        return 1
    for step in (lambda: run_backend("legacy"), lambda: run_backend("nft"), run_rollback, run_bind_mounted_resolv_conf, run_ipv6_auto,
                 run_lock):
        try:
            step()
        except Exception:
            traceback.print_exc()
            failures.append("exception")
    print(f"{len(failures)} failure(s)" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
