#!/usr/bin/python3
"""The admission webhook over real HTTPS (a CA made here with openssl): AdmissionReview
documents as the API server sends them, each patch applied with python3-jsonpatch and the
result validated against the Kubernetes schemas (npm kubernetes-models); certificate rotation
without a restart; bad input answered with one clear line while the webhook keeps serving;
/spaces with ETag."""

import copy
import json
import os
import socket
import ssl
import sys
import unittest

import jsonpatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webhook_lib as wl  # noqa: E402

TREE = {"spaces": {"default": {}, "team": {"parent": "default"},
                   "azureuser": {"parent": "team"}}}


def deployment_pod(**spec_extra):
    """A pod as the ReplicaSet controller creates it: generateName, no name, owner reference."""
    spec = {
        "containers": [{"name": "web", "image": "example/web:1.0",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
        "securityContext": {}, "schedulerName": "default-scheduler",
        "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
    }
    spec.update(spec_extra)
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "generateName": "web-7d9f8b6c5d-", "namespace": "azureuser",
            "creationTimestamp": None,
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9102"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d9f8b6c5d", "uid": "0d1e", "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": spec,
        "status": {},
    }


class Webhook(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir, cls.cleanup = wl.tempdir("webhook-test-")
        try:
            cls.pki = wl.Pki(cls.dir)
            cls.cert, cls.key = cls.pki.issue("server", "webhook-1")
            cls.tree = os.path.join(cls.dir, "spaces.json")
            with open(cls.tree, "w") as f:
                json.dump(TREE, f)
            cls.hook = wl.Webhook(cls.cert, cls.key,
                                  ["--spaces-file", cls.tree, "--read-timeout", "1s",
                                   "--admin-port", "16090", "--exclude-outbound-ports", "3306"])
            cls.validator = wl.Validator()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.hook.close()
        cls.cleanup()

    def tearDown(self):
        self.assertTrue(self.hook.alive(), "the webhook exited")

    def post(self, body, headers=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return wl.https_request(self.hook.https_port, self.pki.ca, "POST", "/inject", body,
                                headers or {"Content-Type": "application/json"})

    def admit(self, pod, namespace):
        status, headers, body = self.post(wl.review(pod, namespace))
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["apiVersion"], "admission.k8s.io/v1")
        self.assertEqual(doc["kind"], "AdmissionReview")
        res = doc["response"]
        self.assertEqual(res["uid"], "3f1c0a6e-0000-4000-8000-000000000001")
        self.assertTrue(res["allowed"])
        patch = wl.decode_patch(res)
        patched = jsonpatch.JsonPatch(patch).apply(copy.deepcopy(pod)) if patch else pod
        return res, patch, patched

    def assert_valid(self, *objects):
        errors = self.validator.errors(list(objects))
        self.assertEqual(errors, [""] * len(objects))

    @staticmethod
    def env(container):
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}

    def test_deployment_pod_with_generate_name(self):
        pod = deployment_pod()
        res, patch, patched = self.admit(pod, "azureuser")
        self.assertTrue(patch)
        self.assert_valid(patched)
        inits = patched["spec"]["initContainers"]
        self.assertEqual([c["name"] for c in inits], ["devspaces-proxy-init", "devspaces-proxy"])
        init, proxy = inits
        self.assertEqual(init["securityContext"]["capabilities"]["add"], ["NET_ADMIN", "NET_RAW"])
        self.assertEqual(proxy["restartPolicy"], "Always")
        self.assertEqual(proxy["startupProbe"]["httpGet"], {"path": "/readyz", "port": 16090})
        self.assertEqual(proxy["securityContext"]["runAsUser"], 1337)
        self.assertTrue(proxy["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(proxy["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
        ienv, penv = self.env(init), self.env(proxy)
        # Space = namespace; parents from the tree (azureuser -> team -> default).
        self.assertEqual(ienv["DEVSPACES_SPACE"], "azureuser")
        self.assertEqual(penv["DEVSPACES_SPACE"], "azureuser")
        self.assertEqual(penv["DEVSPACES_PARENT_SPACES"], "team,default")
        self.assertEqual(ienv["DEVSPACES_PARENT_SPACES"], "team,default")
        # One admin port everywhere, and always excluded by the init.
        self.assertEqual(ienv["DEVSPACES_ADMIN_PORT"], "16090")
        self.assertEqual(penv["DEVSPACES_ADMIN_ADDRESS"], "0.0.0.0:16090")
        self.assertEqual(ienv["DEVSPACES_EXCLUDE_OUTBOUND_PORTS"], "3306")
        self.assertEqual(penv["POD_NAME"], {"fieldRef": {"fieldPath": "metadata.name"}})
        # The app's own annotations and containers are kept.
        ann = patched["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/port"], "9102")
        self.assertEqual(ann["devspaces.io/status"], "injected")
        self.assertEqual(patched["spec"]["containers"], pod["spec"]["containers"])
        self.assertEqual(patched["metadata"]["generateName"], "web-7d9f8b6c5d-")

    def test_existing_init_containers_and_security_contexts(self):
        pod = deployment_pod(
            initContainers=[{"name": "migrate", "image": "example/migrate:1",
                             "securityContext": {"runAsUser": 1000}}],
            securityContext={"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 2000})
        pod["spec"]["containers"][0]["securityContext"] = {"readOnlyRootFilesystem": True}
        _, _, patched = self.admit(pod, "default")
        self.assert_valid(patched)
        names = [c["name"] for c in patched["spec"]["initContainers"]]
        self.assertEqual(names, ["devspaces-proxy-init", "devspaces-proxy", "migrate"])
        self.assertEqual(patched["spec"]["securityContext"], pod["spec"]["securityContext"])
        init = patched["spec"]["initContainers"][0]
        self.assertEqual(init["securityContext"]["runAsUser"], 0)
        self.assertFalse(init["securityContext"]["runAsNonRoot"])
        self.assertEqual(self.env(init)["DEVSPACES_PARENT_SPACES"], "")

    def test_host_network_pod_is_allowed_unchanged(self):
        res, patch, _ = self.admit(deployment_pod(hostNetwork=True), "default")
        self.assertEqual(patch, [])
        self.assertNotIn("patchType", res)

    def test_opted_out_pod_is_allowed_unchanged(self):
        pod = deployment_pod()
        pod["metadata"]["annotations"]["devspaces.io/inject"] = "false"
        res, patch, _ = self.admit(pod, "default")
        self.assertEqual(patch, [])

    def test_already_injected_pod_is_left_alone(self):
        _, _, once = self.admit(deployment_pod(), "azureuser")
        res, patch, twice = self.admit(once, "azureuser")
        self.assertEqual(patch, [])
        self.assertEqual(twice, once)

    def test_pod_in_unlabelled_namespace_is_a_root_space(self):
        _, _, patched = self.admit(deployment_pod(), "scratch")
        self.assert_valid(patched)
        penv = self.env(patched["spec"]["initContainers"][1])
        self.assertEqual(penv["DEVSPACES_SPACE"], "scratch")
        self.assertEqual(penv["DEVSPACES_PARENT_SPACES"], "")

    def test_annotation_overrides_and_warnings(self):
        pod = deployment_pod()
        pod["metadata"]["annotations"].update({
            "devspaces.io/exclude-outbound-cidrs": "10.96.0.0/12",
            "devspaces.io/exclude-inbound-ports": "not-a-port"})
        res, _, patched = self.admit(pod, "default")
        ienv = self.env(patched["spec"]["initContainers"][0])
        self.assertEqual(ienv["DEVSPACES_EXCLUDE_OUTBOUND_CIDRS"], "10.96.0.0/12")
        self.assertEqual(ienv["DEVSPACES_EXCLUDE_INBOUND_PORTS"], "")
        self.assertEqual(len(res["warnings"]), 1)
        self.assertIn("devspaces.io/exclude-inbound-ports", res["warnings"][0])

    def assert_one_line_error(self, status, body, expected_status, needle):
        self.assertEqual(status, expected_status, body)
        text = body.decode()
        self.assertTrue(text.endswith("\n") and text.count("\n") == 1, repr(text))
        self.assertIn(needle, text)

    def test_bad_bodies_get_400_with_one_line(self):
        status, _, body = self.post(b"this is not json")
        self.assert_one_line_error(status, body, 400, "not JSON")
        status, _, body = self.post({"apiVersion": "v1", "kind": "Pod"})
        self.assert_one_line_error(status, body, 400, "expected AdmissionReview")
        bad = wl.review(deployment_pod(), "default")
        bad["request"]["kind"]["kind"] = "Deployment"
        status, _, body = self.post(bad)
        self.assert_one_line_error(status, body, 400, "not Pod")
        status, _, body = wl.https_request(self.hook.https_port, self.pki.ca, "GET", "/inject")
        self.assertEqual(status, 405)
        # Still serving.
        self.admit(deployment_pod(), "default")

    def test_ten_mib_body_is_refused(self):
        status, _, body = self.post(b"{" + b" " * (10 * 1024 * 1024) + b"}")
        self.assert_one_line_error(status, body, 413, "body larger than")
        self.admit(deployment_pod(), "default")

    def test_slow_client_does_not_block_others_and_is_closed(self):
        raw = socket.create_connection(("127.0.0.1", self.hook.https_port), timeout=10)
        slow = wl.tls_context(self.pki.ca).wrap_socket(raw, server_hostname="127.0.0.1")
        try:
            slow.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            # Another client is served meanwhile.
            self.admit(deployment_pod(), "default")
            # The slow one is closed after --read-timeout (1s): recv sees the end.
            data = b""
            try:
                while True:
                    chunk = slow.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ssl.SSLError, ConnectionResetError):
                pass
            self.assertNotIn(b"200 OK", data)
        finally:
            slow.close()
        self.admit(deployment_pod(), "default")

    def test_spaces_with_etag(self):
        status, headers, body = wl.https_request(self.hook.https_port, self.pki.ca, "GET",
                                                 "/spaces")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), TREE)
        etag = headers["ETag"]
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.hook.http_port, timeout=5)
        conn.request("GET", "/spaces", headers={"If-None-Match": etag})
        res = conn.getresponse()
        self.assertEqual(res.status, 304)
        res.read()
        conn.close()

    def test_z_certificate_rotation_without_restart(self):
        before = wl.peer_cert(self.hook.https_port, self.pki.ca)
        cert2, key2 = self.pki.issue("server2", "webhook-2")
        # Replace as a Secret volume update does: new files renamed over the old ones.
        os.replace(key2, self.key)
        os.replace(cert2, self.cert)
        after = wl.wait_for(lambda: (lambda c: c if c != before else None)(
            wl.peer_cert(self.hook.https_port, self.pki.ca)), what="the new certificate")
        self.assertNotEqual(before, after)
        self.admit(deployment_pod(), "default")
        # A broken pair keeps the last good certificate.
        with open(self.cert, "w") as f:
            f.write("garbage")
        self.assertEqual(wl.peer_cert(self.hook.https_port, self.pki.ca), after)
        self.admit(deployment_pod(), "default")


if __name__ == "__main__":
    unittest.main(verbosity=2)
