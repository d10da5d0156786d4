#!/usr/bin/env python3
"""The dev-spaces routing walk-through (SPEC §1.1), for real: pods are network namespaces with
real iptables (devspaces-proxy-init), real DNS (dnsmasq), python apps and devspaces-proxy as
UID 1337. Prints what happened hop by hop, then each proxy's traces, and cleans up."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e",
                                "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

INGRESS_HOST = "azureuser.s.default.servicea.example.io"


def say(text=""):
    print(text, flush=True)


def show_traces(pod):
    """Prints a pod's traces in the Dev Spaces view, through `devspaces-proxy traces`."""
    exe = os.path.join(cluster.bin_dir(), "proxy", "devspaces-proxy")
    res = pod.ns.run(["timeout", "3", exe, "traces", "--no-follow", "http://127.0.0.1:15090"],
                     check=False)
    out = res.stdout.strip()
    if not out:
        for r in pod.traces():
            route = r.get("route", {})
            say(f"   [{r['id']}] {r['direction']} {r['request']['method']} "
                f"{r['request']['host']}{r['request']['target']} route_as={r.get('route_as')} "
                f"({r.get('route_as_source')}) decision={route.get('decision')} "
                f"tried={[t['name'] + '=' + t['result'] for t in route.get('tried', [])]} "
                f"-> {r.get('upstream')} status={(r.get('response') or {}).get('status')}")
        return
    for line in out.splitlines():
        say("   " + line)


def main():
    if os.geteuid() != 0:
        sys.exit("demo: run as root (it creates network namespaces and iptables rules)")
    with netns.Lab("demo") as lab:
        c = cluster.Cluster(lab)
        try:
            say("== Spaces: default {servicea, serviceb}; azureuser (child of default) {servicea}")
            a_default = c.add_pod("servicea", "default", calls=["http://serviceb/api"])
            b_default = c.add_pod("serviceb", "default")
            a_user = c.add_pod("servicea", "azureuser", parents=["default"],
                               calls=["http://serviceb/api"])
            c.start_dns()
            for p in c.pods:
                p.start_proxy()
                say(f"   pod {p.pod_name:24} ip {p.ip}  space {p.space}"
                    f"{'  parents ' + ','.join(p.parents) if p.parents else ''}")
            with open(f"/etc/netns/{a_user.ns.name}/resolv.conf") as f:
                search = [line for line in f if line.startswith("search")]
            say(f"   servicea.azureuser DNS {search[0].strip() if search else '(none)'}")
            say()
            say(f"== 1. Ingress request: GET / Host: {INGRESS_HOST} -> servicea.azureuser pod")
            status, body = c.ingress_get(a_user, INGRESS_HOST)
            say(f"   HTTP {status}")
            for line in body.splitlines():
                say("   | " + line)
            ok = status == 200 and "serviceb.default answered /api (azds-route-as: azureuser)" in body
            say()
            say("== 2. Without the route host: GET / Host: servicea.example.io -> servicea.default")
            status2, body2 = c.ingress_get(a_default, "servicea.example.io")
            for line in body2.splitlines():
                say("   | " + line)
            ok = ok and status2 == 200 and "(azds-route-as: -)" in body2
            say()
            say("== What each proxy recorded")
            for p in (a_user, b_default, a_default):
                say(f"-- {p.pod_name} (space {p.space})")
                show_traces(p)
            say()
            say("== Route decisions (outbound) from /metrics of servicea.azureuser")
            for d in ("own", "parent", "grandparent", "original", "no_header"):
                say(f"   {d:12} {int(a_user.metric('devspaces_proxy_route_decisions_total', decision=d))}")
            say()
            say("demo: OK" if ok else "demo: FAILED (see above)")
            return 0 if ok else 1
        finally:
            c.close()


if __name__ == "__main__":
    sys.exit(main())
