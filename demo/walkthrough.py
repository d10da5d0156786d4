#!/usr/bin/env python3
"""The dev-spaces routing walk-through (README, "Quick start"), for real: pods are network
namespaces with
real iptables (devspaces-proxy-init), real DNS (dnsmasq), python apps and devspaces-proxy as
UID 1337. Prints what happened hop by hop, then each proxy's traces, and cleans up."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e",
                                "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

INGRESS_HOST = "azureuser.s.default.servicea.example.io"
HERE = os.path.dirname(os.path.abspath(__file__))
GRPC_APP = os.path.join(HERE, "..", "tests", "e2e", "lib", "grpc_app.py")
GRPC_CALL = os.path.join(HERE, "grpc_call.py")
GRPC_PORT = 50051
# Names resolve through the pod's search list (getaddrinfo), as the pod's other apps do.
GRPC_ENV = dict(os.environ, GRPC_DNS_RESOLVER="native")


def say(text=""):
    print(text, flush=True)


def stop_and_print(pod, follower):
    """Stops a pod's `devspaces-proxy traces` follower and prints what it showed."""
    netns.wait_until(lambda: len(pod.traces()) > 0, 5, f"{pod.pod_name} traces")
    follower.send_signal(signal.SIGINT)
    try:
        out, _ = follower.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        follower.kill()
        out, _ = follower.communicate()
    for line in out.rstrip().splitlines():
        say("   " + line)
    return out


def grpc_hop(caller):
    """Step 4: a gRPC call from serviceb.default to servicea with `azds-route-as: azureuser`
    metadata: its HTTP/2 stream is routed to the child space's servicea."""
    say("== 4. gRPC: serviceb.default's app calls servicea:50051 /demo.Walk/Hello with metadata")
    say("      azds-route-as=azureuser (HTTP/2, prior knowledge)")
    res = caller.ns.run(["/usr/bin/python3", GRPC_CALL, f"servicea:{GRPC_PORT}", "/grpc-hop",
                         "azds-route-as=azureuser"], check=False, env=GRPC_ENV)
    out = (res.stdout + res.stderr).strip()
    for line in out.splitlines():
        say("   | " + line)
    recs = netns.wait_until(
        lambda: [r for r in caller.traces("direction=outbound")
                 if r.get("protocol") == "h2" and r["request"]["target"] == "/demo.Walk/Hello"],
        5, "gRPC record")
    r = recs[-1]
    trailers = dict((n, v) for n, v in (r.get("response") or {}).get("trailers", []))
    say(f"   serviceb.default's outbound record: protocol={r['protocol']} "
        f"stream_id={r['stream_id']} route_as={r['route_as']} decision={r['route']['decision']} "
        f"service={r['route']['service']} upstream={r['upstream']} "
        f"grpc-status={trailers.get('grpc-status', '?')}")
    return (out == "servicea.azureuser answered /grpc-hop (azds-route-as: azureuser)" and
            r["route"]["decision"] == "own" and trailers.get("grpc-status") == "0")


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
            say("   and servicea-otel in azureuser: an app that forwards only W3C traceparent")
            otel = c.add_pod("servicea-otel", "azureuser", parents=["default"],
                             calls=["http://serviceb/api"], app_args=["--propagate", "traceparent"])
            say(f"   servicea in default and in azureuser also serve gRPC (h2c) on :{GRPC_PORT}")
            for p in (a_default, a_user):
                p.ns.popen(["/usr/bin/python3", GRPC_APP, "--name", p.service, "--space", p.space,
                            "--port", str(GRPC_PORT)], env=GRPC_ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            for p in (a_default, a_user):
                p.ns.wait_port("127.0.0.1", GRPC_PORT, 20)
            c.start_dns()
            for p in c.pods:
                p.start_proxy()
                say(f"   pod {p.pod_name:24} ip {p.ip}  space {p.space}"
                    f"{'  parents ' + ','.join(p.parents) if p.parents else ''}")
            with open(f"/etc/netns/{a_user.ns.name}/resolv.conf") as f:
                search = [line for line in f if line.startswith("search")]
            say(f"   servicea.azureuser DNS {search[0].strip() if search else '(none)'}")
            followers = {p: p.follow_traces() for p in (a_user, b_default, a_default)}
            time.sleep(0.5)  # let each follower connect before the traffic starts
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
            say("== 3. Route memory: GET / with traceparent -> servicea-otel.azureuser, whose app")
            say("      forwards traceparent only (no route header)")
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            status3, body3 = c.ingress_get(
                otel, "azureuser.s.default.servicea-otel.example.io",
                headers=[f"traceparent: 00-{trace_id}-00f067aa0ba902b7-01"])
            for line in body3.splitlines():
                say("   | " + line)
            recs = netns.wait_until(
                lambda: otel.traces(f"direction=outbound&trace_id={trace_id}"), 5, "record")
            r = recs[-1]
            say(f"   servicea-otel's outbound record: route_as={r['route_as']} "
                f"route_as_source={r['route_as_source']} decision={r['route']['decision']} "
                f"trace_id={r['trace_id']}")
            ok = ok and status3 == 200 and \
                "serviceb.default answered /api (azds-route-as: azureuser)" in body3 and \
                r["route_as_source"] == "memory"
            say()
            ok = grpc_hop(b_default) and ok
            say()
            say("== What each proxy recorded (devspaces-proxy traces, one follower per pod)")
            for p, follower in followers.items():
                say(f"-- {p.pod_name} (space {p.space})")
                shown = stop_and_print(p, follower)
                if p is b_default:  # the gRPC hop's outcome in the human view
                    ok = ok and "grpc-status: 0 OK" in shown
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
