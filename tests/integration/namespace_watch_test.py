#!/usr/bin/python3
"""The webhook's namespace watch against a scripted API-server stand-in (tests/integration/
kube_api_stub.py speaks list/watch over HTTPS with resourceVersion, bookmarks and 410 Gone; no
real API server runs here): label changes reach GET /spaces and a proxy polling it with
--spaces-url within seconds; 410 relists; while the API server is down the last good tree stays
(in the webhook and in the proxy)."""

import json
import os
import socket
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_api_stub  # noqa: E402
import webhook_lib as wl  # noqa: E402

SPACE = {"azds.io/space": "true"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class NamespaceWatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir, cls.cleanup = wl.tempdir("nswatch-test-")
        cls.proxy = None
        cls.hook = None
        try:
            cls.pki = wl.Pki(cls.dir)
            cert, key = cls.pki.issue("server", "webhook")
            api_cert, api_key = cls.pki.issue("api", "kube-apiserver")
            token = os.path.join(cls.dir, "token")
            with open(token, "w") as f:
                f.write("test-token\n")
            cls.api = kube_api_stub.KubeApiStub(api_cert, api_key, "test-token")
            cls.api.put("default", SPACE)
            cls.api.put("team", dict(SPACE, **{"azds.io/parent-space": "default"}))
            cls.api.put("kube-system")
            cls.api.put("other", {"azds.io/space": "false"})
            cls.api_port = cls.api.start()
            cls.hook = wl.Webhook(cert, key, [
                "--kube-api", f"https://127.0.0.1:{cls.api_port}", "--kube-token-file", token,
                "--kube-ca-file", cls.pki.ca])
            cls.spaces_url = f"http://127.0.0.1:{cls.hook.http_port}/spaces"
            cls.admin_port = free_port()
            cls.proxy_log = open(os.path.join(cls.dir, "proxy.log"), "w")
            cls.proxy = subprocess.Popen(
                [wl.PROXY, "--space", "azureuser", "--spaces-url", cls.spaces_url,
                 "--outbound-port", str(free_port()), "--inbound-port", str(free_port()),
                 "--admin-address", f"127.0.0.1:{cls.admin_port}", "--workers", "1"],
                stdout=cls.proxy_log, stderr=subprocess.STDOUT)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proxy:
            cls.proxy.terminate()
            try:
                cls.proxy.wait(20)
            except subprocess.TimeoutExpired:
                cls.proxy.kill()
                cls.proxy.wait()
            cls.proxy_log.close()
        if cls.hook:
            cls.hook.close()
        try:
            cls.api.stop()
        except Exception:
            pass
        cls.cleanup()

    def spaces(self):
        return get_json(self.spaces_url)["spaces"]

    def proxy_tree(self):
        try:
            cfg = get_json(f"http://127.0.0.1:{self.admin_port}/config")
        except OSError:
            return None
        return cfg["space_tree"]["spaces"]

    def wait_tree(self, expected, what):
        wl.wait_for(lambda: self.spaces() == expected, 10, what + " in /spaces")
        wl.wait_for(lambda: {k: v for k, v in (self.proxy_tree() or {}).items()
                             if k in expected} == expected, 10, what + " in the proxy")

    def test_1_initial_list_then_label_changes(self):
        base = {"default": {}, "team": {"parent": "default"}}
        self.wait_tree(base, "the listed namespaces")
        self.assertGreaterEqual(self.api.count("list"), 2, "pagination (page size 2)")
        # A developer labels a child space.
        self.api.put("azureuser", dict(SPACE, **{"azds.io/parent-space": "team"}))
        self.wait_tree(dict(base, azureuser={"parent": "team"}), "the new child space")
        # Re-parent, then unlabel.
        self.api.put("azureuser", dict(SPACE, **{"azds.io/parent-space": "default"}))
        self.wait_tree(dict(base, azureuser={"parent": "default"}), "the new parent")
        self.api.put("azureuser", {})
        wl.wait_for(lambda: "azureuser" not in self.spaces(), 10, "unlabelled namespace gone")
        self.api.put("azureuser", dict(SPACE, **{"azds.io/parent-space": "team"}))
        self.wait_tree(dict(base, azureuser={"parent": "team"}), "labelled again")

    def test_2_gone_relists(self):
        # History compacted while watching: the open watch ends with an ERROR 410 event.
        lists = self.api.count("list")
        self.api.compact()
        self.api.put("scratch", SPACE)
        wl.wait_for(lambda: "scratch" in self.spaces(), 10, "the change after 410")
        self.assertGreater(self.api.count("list"), lists, "a relist after 410 Gone")

    def test_3_api_server_down_keeps_the_last_good_tree(self):
        wl.wait_for(lambda: "azureuser" in self.spaces(), 10, "azureuser")
        before = self.spaces()
        self.wait_tree(before, "the tree before the outage")
        self.api.stop()
        # Polls keep answering with the last good tree, the proxy keeps it too.
        for _ in range(3):
            self.assertEqual(self.spaces(), before)
        self.assertEqual({k: v for k, v in self.proxy_tree().items() if k in before}, before)
        status = urllib.request.urlopen(
            f"http://127.0.0.1:{self.hook.http_port}/healthz", timeout=5).status
        self.assertEqual(status, 200)
        # While it was away its history was compacted: the resumed watch gets HTTP 410 and the
        # webhook relists.
        lists = self.api.count("list")
        self.api.compact()
        self.api.delete("scratch")
        self.api.put("late", SPACE)
        self.api.gone_as_status = True
        first = len(self.api.requests)
        self.api.start(self.api_port)
        wl.wait_for(lambda: "late" in self.spaces() and "scratch" not in self.spaces(), 40,
                    "changes after the outage")
        self.assertGreater(self.api.count("list"), lists)
        resumed = [rv for kind, rv in self.api.requests[first:] if kind == "watch"]
        self.assertTrue(resumed and resumed[0] < self.api.gone_before,
                        "the first watch after the outage resumed from the old version")
        self.wait_tree({k: v for k, v in self.spaces().items()}, "the tree after the outage")
        self.assertTrue(self.hook.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
