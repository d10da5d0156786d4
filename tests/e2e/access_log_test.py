#!/usr/bin/env python3
"""End to end: `--access-log` lines as the running proxy writes them, in both `--log-format`s.

servicea (space azureuser, child of default) runs with `--access-log all --log-format json`;
serviceb (space default) with `--access-log errors --log-format text`. Both stream trace records
and OTLP spans to endpoints where nothing listens, so their uploaders log failures: those lines
must follow --log-format too. Every line each proxy wrote is checked to be in its format.
Real namespaces, iptables, dnsmasq and devspaces-proxy as UID 1337, as in walkthrough_test.py.
"""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import cluster  # noqa: E402
import netns  # noqa: E402

HOST = "azureuser.s.default.servicea.example.io"
TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736"
DEAD_UPLOADS = ["--trace-upstream", "http://127.0.0.1:9/records",
                "--otlp-endpoint", "http://127.0.0.1:9/v1/traces"]
# Text format: `<UTC time> <level> <logger>: <message>`.
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (trace|debug|info|warning|error|"
                       r"critical) ([a-z0-9_]+): (.*)$")
TEXT_FIELD = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)')
FIELDS = ["direction", "method", "authority", "path", "status", "duration_ms", "upstream",
          "route_as", "route_as_source", "decision", "error", "id", "trace_id"]


def read_log(pod):
    """Complete lines of the proxy's output so far (a line being written is left for later)."""
    with open(pod.log, encoding="utf-8") as f:
        text = f.read()
    return [ln for ln in text[:text.rfind("\n") + 1].splitlines() if ln.strip()]


def json_lines(pod):
    return [json.loads(ln) for ln in read_log(pod)]


def text_lines(pod):
    """(level, logger, message) of every line; fails on a line that is not in the text format."""
    out = []
    for ln in read_log(pod):
        m = TEXT_LINE.match(ln)
        if not m:
            raise AssertionError(f"not a text log line: {ln!r}")
        out.append(m.groups())
    return out


def text_fields(message):
    """The key=value pairs of a text access line; quoted values are JSON strings."""
    fields = {}
    for key, value in TEXT_FIELD.findall(message):
        fields[key] = json.loads(value) if value.startswith('"') else value
    return fields


class AccessLog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("accesslog")
        try:
            c = cls.cluster = cluster.Cluster(cls.lab)
            cls.a_user = c.add_pod("servicea", "azureuser", parents=["default"],
                                   calls=["http://serviceb/api"])
            cls.b_default = c.add_pod("serviceb", "default")
            c.start_dns()
            cls.a_user.start_proxy(["--access-log", "all", "--log-format", "json"] + DEAD_UPLOADS)
            cls.b_default.start_proxy(["--access-log", "errors", "--log-format", "text"] +
                                      DEAD_UPLOADS)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()
        cls.lab.close()

    def access_json(self):
        return [r for r in json_lines(self.a_user) if r["logger"] == "access"]

    def access_text(self):
        return [text_fields(msg) for _, name, msg in text_lines(self.b_default)
                if name == "access"]

    def test_1_all_in_json_one_line_per_exchange_with_every_field(self):
        status, body = self.cluster.ingress_get(
            self.a_user, HOST, "/walk", headers=[f"traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01"])
        self.assertEqual(status, 200, body)
        # The app's call to serviceb carries the route header but not traceparent.
        def two_lines():
            lines = [r for r in self.access_json() if (r["direction"], r["path"]) in
                     (("inbound", "/walk"), ("outbound", "/api"))]
            return lines if len(lines) >= 2 else None

        lines = netns.wait_until(two_lines, 5, "two access lines")
        self.assertEqual(len(lines), 2, lines)
        by_dir = {r["direction"]: r for r in lines}
        self.assertEqual(set(by_dir), {"inbound", "outbound"})
        for r in lines:
            self.assertEqual(r["level"], "info")
            self.assertEqual(r["msg"], "exchange")
            self.assertRegex(r["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            for f in FIELDS:
                self.assertIn(f, r)
            self.assertIsInstance(r["duration_ms"], float)
            self.assertGreater(r["duration_ms"], 0)
            self.assertIsNone(r["error"])
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["method"], "GET")

        inbound = by_dir["inbound"]
        self.assertEqual(inbound["authority"], HOST)
        self.assertEqual(inbound["path"], "/walk")
        self.assertEqual(inbound["route_as"], "azureuser")
        self.assertEqual(inbound["route_as_source"], "host")
        self.assertEqual(inbound["decision"], "original")
        self.assertEqual(inbound["upstream"], f"{self.a_user.ip}:80")
        self.assertEqual(inbound["trace_id"], TRACE_ID)

        outbound = by_dir["outbound"]
        self.assertEqual(outbound["authority"], "serviceb")
        self.assertEqual(outbound["path"], "/api")
        self.assertEqual(outbound["upstream"], f"{self.b_default.ip}:80")
        self.assertEqual(outbound["route_as"], "azureuser")
        self.assertEqual(outbound["route_as_source"], "header")
        self.assertEqual(outbound["decision"], "parent")
        self.assertIsNone(outbound["trace_id"])
        # The inbound exchange lasted at least as long as the call it waited for.
        self.assertGreaterEqual(inbound["duration_ms"], outbound["duration_ms"])

        # The same exchange's trace record agrees with its access line.
        rec = [r for r in self.a_user.traces("direction=outbound") if r["id"] == outbound["id"]][0]
        self.assertEqual(outbound["id"], rec["id"])
        self.assertAlmostEqual(outbound["duration_ms"], rec["duration_us"] / 1000.0, delta=0.001)
        self.assertEqual(rec["route"]["decision"], outbound["decision"])

    def test_2_errors_in_text_only_failed_exchanges(self):
        # A successful exchange through serviceb's proxy: no access line in `errors` mode.
        status, body = self.cluster.ingress_get(self.b_default, "serviceb", "/fine")
        self.assertEqual(status, 200, body)
        netns.wait_until(lambda: [r for r in self.b_default.traces("direction=inbound")
                                  if r["request"]["target"] == "/fine"], 5, "record of /fine")
        # A call from serviceb's pod to a port nothing listens on: the proxy answers 502.
        res = self.b_default.ns.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
             "-H", "Host: closed.example", f"http://{cluster.DNS_IP}:81/refused?q=1"], check=False)
        self.assertEqual(res.stdout, "502")
        lines = netns.wait_until(self.access_text, 5, "an access line")
        self.assertEqual(len(lines), 1, lines)
        r = lines[0]
        self.assertEqual(list(r), FIELDS)
        self.assertEqual(r["direction"], "outbound")
        self.assertEqual(r["method"], "GET")
        self.assertEqual(r["authority"], "closed.example")
        self.assertEqual(r["path"], "/refused?q=1")
        self.assertEqual(r["upstream"], f"{cluster.DNS_IP}:81")
        self.assertEqual(r["route_as"], "-")
        self.assertEqual(r["route_as_source"], "none")
        self.assertEqual(r["decision"], "original")
        self.assertRegex(r["duration_ms"], r"^\d+\.\d{3}$")
        self.assertIn("refused", r["error"])
        self.assertEqual(r["status"], "502")  # the answer the proxy gave the app

    def test_3_every_line_follows_the_log_format_the_uploaders_included(self):
        # Both uploaders of each proxy found nothing listening and said so in the chosen format.
        def uploader_lines_json():
            lines = [r for r in json_lines(self.a_user) if r["logger"] == "trace"]
            return lines if len(lines) >= 2 else None

        lines = netns.wait_until(uploader_lines_json, 15, "uploader lines in JSON")
        self.assertTrue(all(r["level"] == "warning" for r in lines), lines)
        self.assertTrue(any("127.0.0.1:9/records" in r["msg"] for r in lines), lines)
        self.assertTrue(any("127.0.0.1:9/v1/traces" in r["msg"] for r in lines), lines)

        def uploader_lines_text():
            lines = [(lvl, msg) for lvl, name, msg in text_lines(self.b_default) if name == "trace"]
            return lines if len(lines) >= 2 else None

        lines = netns.wait_until(uploader_lines_text, 15, "uploader lines in text")
        self.assertTrue(all(lvl == "warning" for lvl, _ in lines), lines)
        self.assertTrue(any("127.0.0.1:9/records" in msg for _, msg in lines), lines)
        # json_lines/text_lines above parsed every line each proxy wrote; the loggers seen:
        names = {r["logger"] for r in json_lines(self.a_user)}
        self.assertTrue({"main", "access", "trace"} <= names, names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
