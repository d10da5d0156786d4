#!/usr/bin/env python3
"""End to end: the dev-spaces walk-through over gRPC (HTTP/2 with prior knowledge) in a
miniature cluster (network namespaces, real iptables from devspaces-proxy-init, dnsmasq,
devspaces-proxy as UID 1337, Python gRPC apps), asserting on what the apps saw, the per-stream
trace records and the metrics.

Spaces: default {servicea, serviceb, servicec}; team (child of default) {serviceb};
azureuser (child of team) {servicea}. Every pod runs the gRPC walk-through app on port 50051.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

HOST = "azureuser.s.default.servicea.example.io"
GRPC_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "grpc_app.py")
PORT = 50051
# getaddrinfo (the pod's search list), as a pod's app resolves names; gRPC's own resolver
# ignores search domains.
GRPC_ENV = dict(os.environ, GRPC_DNS_RESOLVER="native")

CALL = """
import sys, grpc
ident = lambda b: b
target, authority, path = sys.argv[1:4]
md = tuple(tuple(kv.split('=', 1)) for kv in sys.argv[4:])
opts = [("grpc.default_authority", authority)] if authority else []
with grpc.insecure_channel(target, options=opts) as ch:
    try:
        print(ch.unary_unary("/demo.Walk/Hello", ident, ident)(path.encode(), metadata=md,
                                                               timeout=15).decode(), end="")
    except grpc.RpcError as e:
        print("ERROR", e.code().name, e.details())
"""


class GrpcWalkthrough(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("grpcwalk")
        try:
            c = cls.cluster = cluster.Cluster(cls.lab)
            cls.a_default = c.add_pod("servicea", "default")
            cls.b_default = c.add_pod("serviceb", "default")
            cls.c_default = c.add_pod("servicec", "default")
            cls.b_team = c.add_pod("serviceb", "team", parents=["default"])
            cls.a_user = c.add_pod("servicea", "azureuser", parents=["team", "default"])
            cls.client = c.add_pod("client", "azureuser", parents=["team", "default"])
            calls = {cls.a_user: [f"serviceb:{PORT}", f"servicec:{PORT}"]}
            for p in c.pods:
                args = ["/usr/bin/python3", GRPC_APP, "--name", p.service, "--space", p.space,
                        "--port", str(PORT)]
                for t in calls.get(p, []):
                    args += ["--call", t]
                p.ns.popen(args, env=GRPC_ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
                p.ns.wait_port("127.0.0.1", PORT, 20)
            c.start_dns()
            for p in c.pods:
                p.start_proxy()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()
        cls.lab.close()

    def call(self, ns, target, authority, path, *metadata):
        res = ns.run(["/usr/bin/python3", "-c", CALL, target, authority, path, *metadata],
                     check=False, env=GRPC_ENV)
        return res.stdout + res.stderr

    def records(self, pod, direction, path):
        return [r for r in pod.traces()
                if r["direction"] == direction and r["request"]["target"] == path]

    def test_1_walkthrough_over_grpc(self):
        out = self.call(self.cluster.ingress, f"{self.a_user.ip}:{PORT}", HOST, "/walk")
        lines = out.splitlines()
        self.assertEqual(lines[0], "servicea.azureuser answered /walk (azds-route-as: azureuser)",
                         out)
        self.assertIn("  serviceb.team answered /api (azds-route-as: azureuser)", lines)
        self.assertIn("  servicec.default answered /api (azds-route-as: azureuser)", lines)

        path = "/demo.Walk/Hello"
        inbound = netns.wait_until(lambda: self.records(self.a_user, "inbound", path), 5,
                                   "inbound record")[-1]
        self.assertEqual(inbound["protocol"], "h2")
        self.assertIsInstance(inbound["stream_id"], int)
        self.assertEqual(inbound["route_as"], "azureuser")
        self.assertEqual(inbound["route_as_source"], "host")
        self.assertEqual(inbound["request"]["host"], HOST)
        self.assertIn(["azds-route-as", "azureuser"], inbound["request"]["headers"])
        self.assertIn(["grpc-status", "0"], inbound["response"]["trailers"])

        out_recs = netns.wait_until(
            lambda: [r for r in self.records(self.a_user, "outbound", path)
                     if r["route"]["service"] in ("serviceb", "servicec")], 5, "outbound records")
        by_service = {r["route"]["service"]: r for r in out_recs}
        b = by_service["serviceb"]
        self.assertEqual(b["protocol"], "h2")
        self.assertEqual(b["route"]["decision"], "parent")
        self.assertEqual(b["upstream"], f"{self.b_team.ip}:{PORT}")
        self.assertIn(["grpc-status", "0"], b["response"]["trailers"])
        self.assertEqual(by_service["servicec"]["route"]["decision"], "grandparent")

        far = netns.wait_until(lambda: self.records(self.b_team, "inbound", path), 5,
                               "serviceb.team inbound record")[-1]
        self.assertEqual(far["route_as"], "azureuser")
        self.assertEqual(far["protocol"], "h2")

        self.assertGreaterEqual(self.a_user.metric("devspaces_proxy_connections_total",
                                                   direction="inbound", protocol="h2"), 1)
        self.assertGreaterEqual(self.a_user.metric("devspaces_proxy_connections_total",
                                                   direction="outbound", protocol="h2"), 1)
        self.assertGreaterEqual(self.a_user.metric("devspaces_proxy_http_requests_total",
                                                   direction="outbound", method="POST",
                                                   code_class="2xx"), 2)
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_decisions_total", decision="grandparent"), 1)

    def test_2_own_space_hit(self):
        out = self.call(self.client.ns, f"servicea.default:{PORT}", "", "/own",
                        "azds-route-as=azureuser")
        self.assertTrue(out.startswith("servicea.azureuser answered /own"), out)
        rec = netns.wait_until(lambda: self.records(self.client, "outbound", "/demo.Walk/Hello"),
                               5, "record")
        self.assertEqual(rec[-1]["route"]["decision"], "own")
        self.assertEqual(rec[-1]["route"]["level"], 0)

    def test_3_no_metadata_goes_to_original_destination(self):
        out = self.call(self.client.ns, f"servicea.default:{PORT}", "", "/plain")
        self.assertTrue(out.startswith("servicea.default answered /plain (azds-route-as: -)"), out)

    def test_4_unreachable_service_is_unavailable_naming_the_proxy(self):
        # serviceb.default's app listens on 50051 only; 50052 is refused behind the proxy.
        out = self.call(self.client.ns, f"serviceb.default:{PORT + 1}", "", "/gone")
        self.assertTrue(out.startswith("ERROR UNAVAILABLE devspaces-proxy"), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
