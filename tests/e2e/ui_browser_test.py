#!/usr/bin/env python3
"""End to end: the admin port's /ui page in a real browser. Debian's Chromium, headless, driven by
Playwright (tests/js/ui_browser.mjs), opens http://127.0.0.1:15090/ui inside a pod's network
namespace while requests go through that pod's devspaces-proxy: records appear live, a filter
narrows the table, the detail pane shows the route decision and the names tried, pause holds new
records back and resume shows them. The page is served to loopback clients only. A screenshot is
kept in the build tree (its path is printed).

Spaces: default {servicea, serviceb}; azureuser (child of default) {servicea}. servicea calls
serviceb, which exists in default only, so its proxy falls back to the parent space.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

HOST = "azureuser.s.default.servicea.example.io"
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "js",
                      "ui_browser.mjs")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class UiInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("uibrowser")
        try:
            c = cls.cluster = cluster.Cluster(cls.lab)
            cls.a_user = c.add_pod("servicea", "azureuser", parents=["default"],
                                   calls=["http://serviceb/api"])
            cls.b_default = c.add_pod("serviceb", "default")
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

    def send(self, paths):
        for path in paths:
            status, body = self.cluster.ingress_get(self.a_user, HOST, path)
            self.assertEqual(status, 200, body)

    def test_ui_is_served_to_loopback_clients_only(self):
        res = self.cluster.ingress.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             f"http://{self.a_user.ip}:{self.a_user.admin_port}/ui"], check=False)
        self.assertEqual(res.stdout, "403")
        status, body = self.a_user.admin("/ui")
        self.assertEqual(status, 200)
        self.assertIn("<title>devspaces-proxy traces</title>", body)

    def test_page_follows_filters_details_pauses(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: run scripts/setup-deps")
        out_dir = os.path.join(cluster.bin_dir(), "test-artifacts")
        os.makedirs(out_dir, exist_ok=True)
        shot = os.path.join(out_dir, "ui_browser.png")
        if os.path.exists(shot):
            os.unlink(shot)
        url = f"http://127.0.0.1:{self.a_user.admin_port}/ui"
        node = self.a_user.ns.popen(["node", SCRIPT, url, shot], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, CHROMIUM=CHROMIUM))
        # The whole browser session has a deadline; the watchdog ends it if a step hangs.
        watchdog = threading.Timer(120, node.kill)
        watchdog.start()
        result = None
        try:
            for line in node.stdout:
                msg = json.loads(line)
                if msg.get("need") == "traffic":
                    if msg["round"] == 1:
                        self.send(["/live-1", "/live-2", "/live-3"])
                    else:
                        self.send(["/while-paused"])
                    node.stdin.write("sent\n")
                    node.stdin.flush()
                elif "result" in msg:
                    result = msg["result"]
            node.wait()
        finally:
            watchdog.cancel()
        err = node.stderr.read()
        self.assertEqual(node.returncode, 0, err)
        self.assertIsNotNone(result, err)
        print(f"ui_browser: screenshot {shot}", flush=True)

        # Self-contained: the page loaded nothing from any other origin and threw nothing.
        self.assertEqual(result["foreign"], [])
        self.assertEqual(result["errors"], [])
        self.assertIn("default-src 'none'", result["csp"])

        # Live: the three inbound requests and the three calls servicea made, in the table.
        paths = [c[3] for c in result["all"]]
        for p in ("/live-1", "/live-2", "/live-3"):
            self.assertIn(p, paths)
        self.assertGreaterEqual(paths.count("/api"), 3)
        inbound = next(c for c in result["all"] if c[3] == "/live-2")
        self.assertEqual(inbound[1:3], ["inbound", "GET"])
        self.assertEqual(inbound[4], "200")

        # Filters: the path prefix leaves one row; direction=outbound only servicea's calls.
        self.assertEqual([c[3] for c in result["byPath"]], ["/live-2"])
        self.assertLess(len(result["byDirection"]), len(result["all"]))
        self.assertTrue(all(c[1] == "outbound" and c[3] == "/api"
                            for c in result["byDirection"]), result["byDirection"])

        # Detail pane: parent fallback, named with the space it came from, and the names tried.
        facts = result["facts"]
        self.assertEqual(result["selected"], 1)
        self.assertEqual(facts["decision"], "parent (level 1)")
        self.assertEqual(facts["route as"], "azureuser (from header)")
        self.assertEqual(facts["upstream"], f"{self.b_default.ip}:80")
        self.assertEqual(facts["status"], "200 OK")
        self.assertEqual(result["tried"], [
            ["serviceb.azureuser.svc.cluster.local", "nxdomain"],
            ["serviceb.default.svc.cluster.local", self.b_default.ip],
        ])
        self.assertGreater(os.path.getsize(shot), 10000)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

        # Pause: new records are counted but not shown; resume adds them.
        self.assertEqual(result["pausedLabel"], "Resume")
        self.assertRegex(result["heldState"], r"^paused \([1-9][0-9]* new\)$")
        self.assertNotIn("/while-paused", result["pathsWhilePaused"])
        self.assertEqual(len(result["pathsWhilePaused"]), result["rowsWhenPaused"])
        self.assertEqual(result["resumedLabel"], "Pause")
        self.assertEqual(result["resumedState"], "live")


if __name__ == "__main__":
    unittest.main(verbosity=2)
