"""Helpers for the webhook tests: a CA and certificates made with the openssl CLI, the webhook
process, HTTPS requests that trust only the test CA, and the Kubernetes schema validator (the
`kubernetes-models` npm package, installed into the build tree on first use)."""

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time

BIN_DIR = os.environ.get("DEVSPACES_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                           "build", "asan"))
PROXY = os.path.join(BIN_DIR, "proxy", "devspaces-proxy")
HERE = os.path.dirname(os.path.abspath(__file__))


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise AssertionError("timed out waiting for " + what)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A throwaway CA and server certificates for 127.0.0.1 / localhost."""

    def __init__(self, directory):
        self.dir = directory
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=devspaces test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
        self.ca = os.path.join(directory, "ca.crt")

    def issue(self, name, cn):
        """Writes name.crt / name.key signed by the CA; returns their paths."""
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout",
                name + ".key", "-out", name + ".csr", cwd=self.dir)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", name + ".crt",
                cwd=self.dir)
        return os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key")


class Webhook:
    """The webhook process on 127.0.0.1 port 0 (HTTPS) and port 0 (plain /spaces)."""

    def __init__(self, cert, key, extra=()):
        self.proc = subprocess.Popen(
            [PROXY, "webhook", "--listen", "127.0.0.1:0", "--spaces-listen", "127.0.0.1:0",
             "--tls-cert", cert, "--tls-key", key, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.close()
            raise AssertionError("webhook did not start: " + line + err)
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        self.https_port = int(fields["https"].rsplit(":", 1)[1])
        self.http_port = int(fields["spaces"].rsplit(":", 1)[1])

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for s in (self.proc.stdout, self.proc.stderr):
            if s:
                s.close()


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def https_request(port, ca, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls_context(ca),
                                       timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


def peer_cert(port, ca):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with tls_context(ca).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def review(pod, namespace, uid="3f1c0a6e-0000-4000-8000-000000000001", operation="CREATE"):
    """An AdmissionReview as the API server sends it for a pod CREATE."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod.get("metadata", {}).get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "a9c0", "groups": ["system:serviceaccounts",
                                                   "system:authenticated"]},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def decode_patch(response):
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(response["patch"]))


class Validator:
    """Validates Kubernetes objects against the published schemas (npm kubernetes-models)."""

    def __init__(self):
        self.prefix = os.path.join(BIN_DIR, "npm-tools")
        mod = os.path.join(self.prefix, "node_modules", "kubernetes-models", "v1")
        if not os.path.isdir(mod):
            os.makedirs(self.prefix, exist_ok=True)
            subprocess.run(["npm", "install", "--prefix", self.prefix, "--no-audit", "--no-fund",
                            "--loglevel=error", "kubernetes-models@4.5.1"], check=True,
                           stdout=subprocess.DEVNULL)
        self.script = os.path.join(HERE, "k8s_validate.js")

    def errors(self, objects):
        """Returns one error string per object ("" when valid)."""
        res = subprocess.run(["node", self.script], input=json.dumps(objects), text=True,
                             capture_output=True, check=True,
                             env=dict(os.environ, NODE_PATH=os.path.join(self.prefix,
                                                                         "node_modules")))
        return json.loads(res.stdout)


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    return d, lambda: shutil.rmtree(d, ignore_errors=True)
