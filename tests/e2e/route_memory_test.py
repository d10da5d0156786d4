#!/usr/bin/env python3
"""End to end: route memory. Apps that forward only W3C `traceparent` (what an OpenTelemetry SDK
does on its own) and never copy the route header still reach the child space's services: each
pod's proxy remembers trace id -> space from the inbound request and routes the app's outbound
calls of that trace by it, adding the route header for the next hop. Real namespaces, iptables,
dnsmasq and devspaces-proxy as UID 1337, as in walkthrough_test.py.

Spaces: default {servicea, serviceb, servicec}; azureuser (child of default) {servicea,
servicec}. servicea calls serviceb; serviceb calls servicec; both forward traceparent only.
"""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

HOST = "azureuser.s.default.servicea.example.io"
TRACE_1 = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_2 = "0af7651916cd43dd8448eb211c80319c"
TRACE_3 = "11112222333344445555666677778888"
TP_ONLY = ["--propagate", "traceparent"]


def traceparent(trace_id):
    return f"traceparent: 00-{trace_id}-00f067aa0ba902b7-01"


class RouteMemory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("routemem")
        try:
            c = cls.cluster = cluster.Cluster(cls.lab)
            cls.a_default = c.add_pod("servicea", "default", calls=["http://serviceb/api"],
                                      app_args=TP_ONLY)
            cls.b_default = c.add_pod("serviceb", "default", calls=["http://servicec/api"],
                                      app_args=TP_ONLY + ["--delay", "0.5"])
            cls.c_default = c.add_pod("servicec", "default")
            cls.a_user = c.add_pod("servicea", "azureuser", parents=["default"],
                                   calls=["http://serviceb/api"], app_args=TP_ONLY)
            cls.c_user = c.add_pod("servicec", "azureuser", parents=["default"])
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

    def outbound(self, pod, trace_id):
        return [r for r in pod.traces(f"direction=outbound&trace_id={trace_id}")]

    def test_1_traceparent_only_app_follows_the_space_with_parent_fallback(self):
        status, body = self.cluster.ingress_get(self.a_user, HOST, "/walk",
                                                headers=[traceparent(TRACE_1)])
        self.assertEqual(status, 200, body)
        lines = body.splitlines()
        self.assertEqual(lines[0], "servicea.azureuser answered /walk (azds-route-as: azureuser)")
        # serviceb exists in default only: parent fallback; the proxy added the route header.
        self.assertEqual(lines[1], "  serviceb.default answered /api (azds-route-as: azureuser)")
        # serviceb's app forwarded traceparent only too: its proxy remembered the space from the
        # header the previous hop added, and routed to the child space's servicec.
        self.assertEqual(lines[2], "    servicec.azureuser answered /api (azds-route-as: azureuser)")

        a = netns.wait_until(lambda: self.outbound(self.a_user, TRACE_1), 5, "a outbound")[-1]
        self.assertEqual(a["route_as"], "azureuser")
        self.assertEqual(a["route_as_source"], "memory")
        self.assertEqual(a["trace_id"], TRACE_1)
        self.assertEqual(a["route"]["decision"], "parent")
        self.assertEqual(a["route"]["level"], 1)
        self.assertEqual(a["upstream"], f"{self.b_default.ip}:80")
        self.assertIn(["azds-route-as", "azureuser"],
                      [[k.lower(), v] for k, v in a["request"]["headers"]])
        b = netns.wait_until(lambda: self.outbound(self.b_default, TRACE_1), 5, "b outbound")[-1]
        self.assertEqual(b["route_as_source"], "memory")
        self.assertEqual(b["route"]["decision"], "own")
        self.assertEqual(b["upstream"], f"{self.c_user.ip}:80")
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_memory_total", result="stored"), 1)
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_memory_total", result="hit"), 1)
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_decisions_total", decision="parent"), 1)

    def test_2_no_traceparent_and_no_header_goes_to_the_original_destination(self):
        status, body = self.cluster.ingress_get(self.a_user, HOST, "/plain")
        self.assertEqual(status, 200, body)
        lines = body.splitlines()
        self.assertEqual(lines[1], "  serviceb.default answered /api (azds-route-as: -)")
        self.assertEqual(lines[2], "    servicec.default answered /api (azds-route-as: -)")
        recs = netns.wait_until(
            lambda: [r for r in self.b_default.traces("direction=outbound")
                     if r["trace_id"] is None], 5, "b outbound without trace id")
        self.assertEqual(recs[-1]["route_as_source"], "none")
        self.assertEqual(recs[-1]["route"]["decision"], "original")
        self.assertEqual(recs[-1]["upstream"], f"{self.c_default.ip}:80")

    def test_3_concurrent_requests_of_different_spaces_and_traces_each_routed_right(self):
        results = {}

        def call(name, headers):
            results[name] = self.cluster.ingress_get(self.b_default, "serviceb", "/" + name,
                                                     headers=headers)

        threads = [
            threading.Thread(target=call, args=("user", ["azds-route-as: azureuser",
                                                         traceparent(TRACE_2)])),
            threading.Thread(target=call, args=("dflt", ["azds-route-as: default",
                                                         traceparent(TRACE_3)])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        status, body = results["user"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body.splitlines()[1],
                         "  servicec.azureuser answered /api (azds-route-as: azureuser)")
        status, body = results["dflt"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body.splitlines()[1],
                         "  servicec.default answered /api (azds-route-as: default)")
        # Both were in flight at once (the app waits 0.5 s before its call): the two inbound
        # exchanges overlap in time.
        inbound = {r["request"]["target"]: r for r in self.b_default.traces("direction=inbound")}
        u, d = inbound["/user"], inbound["/dflt"]
        self.assertGreater(u["duration_us"], 400000)
        self.assertGreater(d["duration_us"], 400000)
        for trace_id, space in ((TRACE_2, "azureuser"), (TRACE_3, "default")):
            rec = netns.wait_until(lambda t=trace_id: self.outbound(self.b_default, t), 5,
                                   "outbound record")[-1]
            self.assertEqual(rec["route_as"], space)
            self.assertEqual(rec["route_as_source"], "memory")
            self.assertEqual(rec["route"]["decision"], "own")

    def test_4_traces_cli_filters_and_json(self):
        exe = os.path.join(cluster.bin_dir(), "proxy", "devspaces-proxy")
        res = self.a_user.ns.run([exe, "traces", "localhost:15090", "--no-follow", "-o", "json",
                                  "--direction", "outbound", "--trace-id", TRACE_1], check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        self.assertGreaterEqual(len(lines), 1, res.stdout)
        self.assertTrue(all(TRACE_1 in ln and '"outbound"' in ln for ln in lines), res.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
