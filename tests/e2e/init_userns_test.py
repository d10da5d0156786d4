#!/usr/bin/env python3
"""devspaces-proxy-init without root: an unprivileged user (nobody) enters a new user + network
namespace (unshare -rn), where it is root with NET_ADMIN over that namespace only. The proxy
UID/GID are 0 there (the only mapped ids), the xtables lock is a private file. For nft and
legacy: apply, rerun (no-op), drift + reconcile, a real REDIRECT for IPv4 and IPv6 whose
SO_ORIGINAL_DST is checked, verify, cleanup (save equal to before)."""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import init_netns as t  # noqa: E402

BIN = t.init_binary()
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


def inside():
    run("ip", "link", "set", "lo", "up")
    # Stand-ins for the pod addresses; the proxy (uid 0 here) reaching them over lo is inbound.
    run("ip", "addr", "add", "198.18.0.2/32", "dev", "lo")
    run("ip", "-6", "addr", "add", "fd00:198:18::2/128", "dev", "lo", "nodad")
    for backend in ("nft", "legacy"):
        save4, save6 = f"iptables-{backend}-save", f"ip6tables-{backend}-save"
        flags = ["--iptables", backend, "--ipv6", "on", "--resolv-conf", "", "--proxy-uid", "0",
                 "--proxy-gid", "0", "--command-timeout", "10s"]
        before = (t.normalize_save_text(run(save4).stdout), t.normalize_save_text(run(save6).stdout))
        r = run(BIN, "apply", *flags)
        check(r.returncode == 0, f"[userns {backend}] apply exits 0 ({r.stderr.strip()})")
        applied = (t.normalize_save_text(run(save4).stdout), t.normalize_save_text(run(save6).stdout))
        r = run(BIN, "apply", *flags)
        check(r.returncode == 0 and r.stdout.count("nothing to do") == 2,
              f"[userns {backend}] rerun is a no-op")
        run(f"iptables-{backend}", "-t", "nat", "-D", "DEVSPACES_INBOUND", "1")
        run(f"ip6tables-{backend}", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "DEVSPACES_OUTPUT")
        r = run(BIN, "apply", *flags)
        check(r.returncode == 0 and r.stdout.count("replaced drifted rules") == 2,
              f"[userns {backend}] drift in both families reconciled")
        now = (t.normalize_save_text(run(save4).stdout), t.normalize_save_text(run(save6).stdout))
        check(now == applied, f"[userns {backend}] reconciled state equals the first apply")

        r = run(BIN, "verify", *flags)
        check(r.returncode == 0 and r.stdout.count("rules (iptables-") == 2,
              f"[userns {backend}] verify exits 0 ({r.stdout.strip()[-200:]} {r.stderr.strip()})")

        server = subprocess.Popen([t.PYTHON, "-c", t.SERVER, "proxy-in,0.0.0.0,15006",
                                   "proxy-in,::,15006"], stdout=subprocess.PIPE, text=True)
        try:
            check(server.stdout.readline().strip() == "ready", f"[userns {backend}] listener up")
            for host, want in (("198.18.0.2", "proxy-in orig=198.18.0.2:8080"),
                               ("fd00:198:18::2", "proxy-in orig=[fd00:198:18::2]:8080")):
                got = run(t.PYTHON, "-c", t.CLIENT, host, "8080", "-").stdout.strip()
                check(got == want, f"[userns {backend}] redirect reports the original destination: {got!r}")
        finally:
            server.kill()
            server.wait()

        r = run(BIN, "cleanup", *flags)
        check(r.returncode == 0, f"[userns {backend}] cleanup exits 0 ({r.stderr.strip()})")
        after = (t.normalize_save_text(run(save4).stdout), t.normalize_save_text(run(save6).stdout))
        check(after == before, f"[userns {backend}] iptables-save equals before")
    return 1 if failures else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        return inside()
    if not os.path.exists(BIN):
        print(f"FAIL: {BIN} not built")
        return 1
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if run(*drop, "unshare", "-rn", "true").returncode != 0:
        print("SKIP: unprivileged user namespaces are disabled on this kernel")
        return 0
    work = tempfile.mkdtemp(prefix="init-userns-")
    os.chmod(work, 0o777)
    try:
        env = dict(os.environ, XTABLES_LOCKFILE=os.path.join(work, "xtables.lock"),
                   DEVSPACES_BIN_DIR=os.path.dirname(os.path.dirname(BIN)))
        started = time.monotonic()
        r = subprocess.run([*drop, "unshare", "-rn", t.PYTHON, os.path.abspath(__file__), "--inside"],
                           env=env, timeout=300)
        print(f"took {time.monotonic() - started:.1f}s")
        return r.returncode
    finally:
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


if __name__ == "__main__":
    sys.exit(main())
