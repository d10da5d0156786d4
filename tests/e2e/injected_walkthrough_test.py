#!/usr/bin/env python3
"""End to end with the injected containers: every pod of the walk-through runs exactly the init
and proxy containers that `devspaces-proxy inject` renders (command, arguments, environment
with the downward API resolved, user from the security context), so the mutation the webhook
and the chart apply cannot drift from what the binaries accept. Uses a non-default admin port
and checks that a client outside the pod is never trusted on it (403 on /traces and /config)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import walkthrough_test as wt  # noqa: E402

ADMIN_PORT = 16090


class InjectedWalkthrough(wt.Walkthrough):
    inject_flags = ["--admin-port", str(ADMIN_PORT), "--ipv6", "off",
                    "--proxy-log-level", "debug", "--proxy-log-format", "text"]

    def outside_get(self, pod, path):
        res = self.cluster.ingress.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             f"http://{pod.ip}:{ADMIN_PORT}{path}"], check=False)
        return res.stdout

    def test_7_injected_containers_ran(self):
        for pod in self.cluster.pods:
            self.assertEqual(pod.admin_port, ADMIN_PORT)
            self.assertEqual(pod.admin("/readyz")[0], 200)

    def test_8_admin_port_from_outside_the_pod_is_not_trusted(self):
        pod = self.a_user
        for path in ("/traces", "/traces?follow=0", "/config"):
            self.assertEqual(self.outside_get(pod, path), "403", path)
        # Metrics and health stay reachable for Prometheus and probes.
        self.assertEqual(self.outside_get(pod, "/metrics"), "200")
        # From inside the pod (what kubectl port-forward gives) the same paths answer.
        self.assertEqual(pod.admin("/config")[0], 200)
        self.assertEqual(pod.admin("/traces?last=1")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
