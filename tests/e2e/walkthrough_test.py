#!/usr/bin/env python3
"""End to end: the dev-spaces walk-through and the routing rules of proxy/routing/README.md
in a miniature
cluster (network namespaces, real iptables from devspaces-proxy-init, dnsmasq, python apps,
devspaces-proxy as UID 1337), asserting on what the apps saw, the trace records and metrics.

Spaces: default {servicea, serviceb, servicec}; team (child of default) {serviceb};
azureuser (child of team) {servicea}. A client pod in azureuser has no service of its own.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

HOST = "azureuser.s.default.servicea.example.io"


class Walkthrough(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("walkthrough")
        try:
            c = cls.cluster = cluster.Cluster(cls.lab)
            cls.a_default = c.add_pod("servicea", "default", calls=["http://serviceb/api"])
            cls.b_default = c.add_pod("serviceb", "default")
            cls.c_default = c.add_pod("servicec", "default")
            cls.b_team = c.add_pod("serviceb", "team", parents=["default"])
            cls.a_user = c.add_pod("servicea", "azureuser", parents=["team", "default"],
                                   calls=["http://serviceb/api", "http://servicec/api"])
            cls.client = c.add_pod("client", "azureuser", parents=["team", "default"])
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

    def client_get(self, url, *headers):
        """curl from the client pod's app side (captured by its proxy); returns (status, body)."""
        args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "15"]
        for h in headers:
            args += ["-H", h]
        res = self.client.ns.run(args + [url], check=False)
        body, _, code = res.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def records(self, pod, direction, path):
        return [r for r in pod.traces()
                if r["direction"] == direction and r["request"]["target"] == path]

    def test_1_walkthrough_parent_and_grandparent_fallback(self):
        status, body = self.cluster.ingress_get(self.a_user, HOST, "/walk")
        self.assertEqual(status, 200, body)
        lines = body.splitlines()
        self.assertEqual(lines[0], "servicea.azureuser answered /walk (azds-route-as: azureuser)")
        self.assertIn("  serviceb.team answered /api (azds-route-as: azureuser)", lines)
        self.assertIn("  servicec.default answered /api (azds-route-as: azureuser)", lines)

        inbound = netns.wait_until(lambda: self.records(self.a_user, "inbound", "/walk"), 5,
                                   "inbound record")[-1]
        self.assertEqual(inbound["route_as"], "azureuser")
        self.assertEqual(inbound["route_as_source"], "host")
        self.assertEqual(inbound["route"]["decision"], "original")
        self.assertIsNone(inbound["route"]["level"])
        self.assertEqual(inbound["space"], "azureuser")
        self.assertEqual(inbound["pod"], self.a_user.pod_name)
        self.assertEqual(inbound["response"]["status"], 200)
        self.assertIn(["azds-route-as", "azureuser"],
                      [[k.lower(), v] for k, v in inbound["request"]["headers"]])

        out = netns.wait_until(lambda: self.records(self.a_user, "outbound", "/api"), 5,
                               "outbound records")
        by_service = {r["route"]["service"]: r for r in out}
        b = by_service["serviceb"]
        self.assertEqual(b["route_as"], "azureuser")
        self.assertEqual(b["route_as_source"], "header")
        self.assertEqual(b["route"]["decision"], "parent")
        self.assertEqual(b["route"]["level"], 1)
        self.assertEqual([t["name"] for t in b["route"]["tried"]],
                         ["serviceb.azureuser.svc.cluster.local", "serviceb.team.svc.cluster.local"])
        self.assertEqual(b["route"]["tried"][0]["result"], "nxdomain")
        self.assertEqual(b["route"]["tried"][1]["result"], self.b_team.ip)
        self.assertEqual(b["upstream"], f"{self.b_team.ip}:80")
        c = by_service["servicec"]
        self.assertEqual(c["route"]["decision"], "grandparent")
        self.assertEqual(c["route"]["level"], 2)
        self.assertEqual(len(c["route"]["tried"]), 3)

        far = netns.wait_until(lambda: self.records(self.b_team, "inbound", "/api"), 5,
                               "serviceb.team inbound record")[-1]
        self.assertEqual(far["route_as"], "azureuser")
        self.assertEqual(far["route_as_source"], "header")
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_decisions_total", decision="parent"), 1)
        self.assertGreaterEqual(
            self.a_user.metric("devspaces_proxy_route_decisions_total", decision="grandparent"), 1)

    def test_2_own_space_wins_over_explicit_ancestor_namespace(self):
        status, body = self.client_get("http://servicea.default/own", "azds-route-as: azureuser")
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("servicea.azureuser answered /own"), body)
        rec = netns.wait_until(lambda: self.records(self.client, "outbound", "/own"), 5, "record")
        self.assertEqual(rec[-1]["route"]["decision"], "own")
        self.assertEqual(rec[-1]["route"]["level"], 0)

    def test_3_no_header_goes_to_original_destination(self):
        status, body = self.client_get("http://servicea.default/plain")
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("servicea.default answered /plain (azds-route-as: -)"), body)
        rec = netns.wait_until(lambda: self.records(self.client, "outbound", "/plain"), 5, "record")
        self.assertEqual(rec[-1]["route"]["decision"], "original")
        self.assertEqual(rec[-1]["route_as_source"], "none")
        self.assertGreaterEqual(
            self.client.metric("devspaces_proxy_route_decisions_total", decision="no_header"), 1)

    def test_4_invalid_header_is_ignored_and_forwarded_untouched(self):
        status, body = self.client_get("http://servicea.default/bad", "azds-route-as: Not_A_Space!")
        self.assertEqual(status, 200, body)
        self.assertTrue(
            body.startswith("servicea.default answered /bad (azds-route-as: Not_A_Space!)"), body)
        self.assertGreaterEqual(
            self.client.metric("devspaces_proxy_route_decisions_total", decision="invalid_header"),
            1)

    def test_5_existing_header_is_kept_inbound(self):
        status, body = self.cluster.ingress_get(self.a_user, HOST, "/kept",
                                                headers=["azds-route-as: team"])
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("servicea.azureuser answered /kept (azds-route-as: team)"),
                        body)
        self.assertIn("  serviceb.team answered /api (azds-route-as: team)", body.splitlines())

    def test_6_each_request_on_a_keepalive_connection_is_routed_on_its_own(self):
        code = (
            "import http.client\n"
            "c = http.client.HTTPConnection('servicea.default', 80, timeout=10)\n"
            "for route in ['azureuser', None, 'azureuser', 'default']:\n"
            "    h = {'azds-route-as': route} if route else {}\n"
            "    c.request('GET', '/ka', headers=h)\n"
            "    r = c.getresponse()\n"
            "    print(r.read().decode().splitlines()[0])\n")
        out = self.client.ns.run(["python3", "-c", code]).stdout.splitlines()
        self.assertEqual(out, [
            "servicea.azureuser answered /ka (azds-route-as: azureuser)",
            "servicea.default answered /ka (azds-route-as: -)",
            "servicea.azureuser answered /ka (azds-route-as: azureuser)",
            "servicea.default answered /ka (azds-route-as: default)",
        ])


if __name__ == "__main__":
    unittest.main(verbosity=2)
