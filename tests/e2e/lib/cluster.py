"""A miniature dev-spaces cluster in network namespaces, for the demo and the e2e tests.

Topology: a "node" namespace holds a bridge; every pod (and the DNS server and the ingress
client) is a namespace with a veth into that bridge and an address in 198.18.0.0/24. A real DNS
server (dnsmasq) answers `<svc>.<space>.svc.<domain>` for the pods that exist and NXDOMAIN for
the rest, so both the app (glibc, through the search list the init writes) and the proxy
(c-ares) resolve names as they would in Kubernetes. Each pod runs its app, then
`devspaces-proxy-init apply`, then `devspaces-proxy` as UID 1337.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import netns

DNS_IP = "198.18.0.2"
INGRESS_IP = "198.18.0.3"
DOMAIN = "cluster.local"
APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_app.py")


def bin_dir():
    d = os.environ.get("DEVSPACES_BIN_DIR")
    if not d:
        raise RuntimeError("DEVSPACES_BIN_DIR must name the build directory")
    return d


class Pod:
    def __init__(self, cluster, service, space, parents, ip, calls, app_args=()):
        self.cluster, self.service, self.space, self.parents = cluster, service, space, parents
        self.ip = ip
        self.admin_port = 15090
        self.pod_name = f"{service}-{space}-7d9f"
        self.ns = cluster.lab.namespace(f"{service}.{space}")
        cluster.attach(self.ns, ip)
        d = f"/etc/netns/{self.ns.name}"
        os.makedirs(d, exist_ok=True)
        cluster.lab.etc_dirs.append(d)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(f"nameserver {DNS_IP}\nsearch svc.{DOMAIN} {DOMAIN}\noptions ndots:5\n")
        self.log = os.path.join(cluster.tmp, f"{self.pod_name}.log")
        extra_app_args = app_args
        app_args = ["python3", APP, "--name", service, "--space", space, "--port", "80"]
        for c in calls:
            app_args += ["--call", c]
        app_args += list(extra_app_args)
        self.ns.popen(app_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ns.wait_port("127.0.0.1", 80)

    def init_args(self):
        args = [os.path.join(bin_dir(), "init", "devspaces-proxy-init"), "apply",
                "--space", self.space, "--ipv6", "off"]
        if self.parents:
            args += ["--parent-spaces", ",".join(self.parents)]
        return args

    def injected_containers(self):
        """The init and proxy containers `devspaces-proxy inject` renders for this pod."""
        manifest = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": self.pod_name, "namespace": self.space},
                    "spec": {"containers": [{"name": self.service, "image": "demo-app"}]}}
        args = [os.path.join(bin_dir(), "proxy", "devspaces-proxy"), "inject", "-o", "json",
                "--space", self.space, *self.cluster.inject_flags]
        if self.parents:
            args += ["--parent-spaces", ",".join(self.parents)]
        res = subprocess.run(args, input=json.dumps(manifest), capture_output=True, text=True,
                             check=True)
        spec = json.loads(res.stdout)["spec"]
        every = spec.get("initContainers", []) + spec["containers"]
        by_name = {c["name"]: c for c in every}
        return by_name["devspaces-proxy-init"], by_name["devspaces-proxy"]

    def container_env(self, container):
        """A container's env as the kubelet resolves it (downward API fields of this pod)."""
        fields = {"metadata.name": self.pod_name, "metadata.namespace": self.space}
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            else:
                env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        return env

    def container_argv(self, container, program):
        """The container's command line: the image entrypoint (our binary) plus its args."""
        exe = os.path.join(bin_dir(), *program)
        return [exe, *container.get("command", [])[1:], *container.get("args", [])]

    def start_injected(self):
        """Runs exactly the containers `inject` produced: the init, then the proxy as its
        securityContext's user, with their env and arguments."""
        init, proxy = self.injected_containers()
        self.admin_port = next(p["containerPort"] for p in proxy["ports"]
                               if p["name"] == "ds-admin")
        base = {k: v for k, v in os.environ.items() if not k.startswith("DEVSPACES_")}
        res = self.ns.run(self.container_argv(init, ("init", "devspaces-proxy-init")),
                          env=dict(base, **self.container_env(init)))
        self.init_output = res.stdout
        uid = proxy["securityContext"]["runAsUser"]
        with open(self.log, "w") as log:
            self.proxy = self.ns.popen(self.container_argv(proxy, ("proxy", "devspaces-proxy")),
                                       uid=uid, env=dict(base, **self.container_env(proxy)),
                                       stdout=log, stderr=subprocess.STDOUT)
        netns.wait_until(lambda: self.admin("/readyz")[0] == 200, 15, f"{self.pod_name} ready")

    def start_proxy(self, extra=()):
        if self.cluster.inject_flags is not None:
            return self.start_injected()
        res = self.ns.run(self.init_args())
        self.init_output = res.stdout
        env = dict(os.environ, POD_NAME=self.pod_name, POD_NAMESPACE=self.space)
        args = [os.path.join(bin_dir(), "proxy", "devspaces-proxy"), "--space", self.space,
                "--admin-address", "0.0.0.0:15090", "--resolver", "dns", "--log-level", "debug",
                *extra]
        if self.parents:
            args += ["--parent-spaces", ",".join(self.parents)]
        with open(self.log, "w") as log:
            self.proxy = self.ns.popen(args, uid=netns.PROXY_UID, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        netns.wait_until(lambda: self.admin("/readyz")[0] == 200, 15, f"{self.pod_name} ready")

    def follow_traces(self):
        """Starts `devspaces-proxy traces` against this pod's admin port, as a developer would
        through kubectl port-forward; returns the process (stdout is a pipe)."""
        exe = os.path.join(bin_dir(), "proxy", "devspaces-proxy")
        return self.ns.popen([exe, "traces", f"http://127.0.0.1:{self.admin_port}"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)

    def admin(self, path):
        """(status, body) of a GET on this pod's admin port, from inside the pod (loopback)."""
        res = self.ns.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5",
                           f"http://127.0.0.1:{self.admin_port}{path}"], check=False)
        body, _, code = res.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def traces(self, query=""):
        """This pod's trace records (the /traces replay, `query` adds filters), parsed."""
        status, body = self.admin("/traces?last=1000" + ("&" + query if query else ""))
        if status != 200:
            return []
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def metric(self, name, **labels):
        """Value of one metric series from /metrics (0 when absent)."""
        _, body = self.admin("/metrics")
        for line in body.splitlines():
            if not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] != name:
                continue
            want = all(f'{k}="{v}"' in head for k, v in labels.items())
            if want:
                return float(value)
        return 0.0


class Cluster:
    def __init__(self, lab, inject_flags=None):
        """inject_flags: None runs the init and the proxy with the harness's own flags; a list
        runs the containers `devspaces-proxy inject <flags>` renders for each pod instead."""
        self.lab = lab
        self.inject_flags = inject_flags
        self.tmp = tempfile.mkdtemp(prefix="devspaces-cluster-")
        self.node = lab.namespace("node")
        self.node.run(["ip", "link", "add", "br0", "type", "bridge"])
        self.node.run(["ip", "link", "set", "br0", "up"])
        self._n = 0
        self.pods = []
        self.dns_ns = lab.namespace("dns")
        self.attach(self.dns_ns, DNS_IP)
        self.ingress = lab.namespace("ingress")
        self.attach(self.ingress, INGRESS_IP)

    def attach(self, ns, ip):
        """Joins a namespace to the node bridge with address ip/24."""
        self._n += 1
        outer, inner = f"br{os.getpid() % 10000}x{self._n}", "eth0"
        netns.run(["ip", "link", "add", outer, "netns", self.node.name, "type", "veth", "peer",
                   "name", inner, "netns", ns.name])
        self.node.run(["ip", "link", "set", outer, "master", "br0"])
        self.node.run(["ip", "link", "set", outer, "up"])
        ns.run(["ip", "addr", "add", f"{ip}/24", "dev", inner])
        ns.run(["ip", "link", "set", inner, "up"])

    def add_pod(self, service, space, parents=(), calls=(), app_args=()):
        """A pod running demo_app.py; app_args go to the app (e.g. --propagate traceparent)."""
        ip = f"198.18.0.{11 + len(self.pods)}"
        pod = Pod(self, service, space, list(parents), ip, list(calls), app_args)
        self.pods.append(pod)
        return pod

    def start_dns(self):
        """dnsmasq answering <svc>.<space>.svc.<domain> for every pod, NXDOMAIN for the rest."""
        args = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--user=root",
                "--pid-file=", f"--listen-address={DNS_IP}", "--bind-interfaces",
                f"--local=/{DOMAIN}/", "--local-ttl=5", "--log-facility=-"]
        for p in self.pods:
            args.append(f"--host-record={p.service}.{p.space}.svc.{DOMAIN},{p.ip}")
        self.dns_ns.popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        netns.wait_until(lambda: self.dns_ns.run(
            ["python3", "-c", "import socket; socket.getaddrinfo('x', 1)"], check=False) is not None,
            5, "dnsmasq")

    def ingress_get(self, pod, host, path="/", headers=()):
        """curl from the ingress namespace to pod:80 with the given Host header; (status, body)."""
        args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "15",
                "-H", f"Host: {host}"]
        for h in headers:
            args += ["-H", h]
        args.append(f"http://{pod.ip}{urllib.parse.quote(path)}")
        res = self.ingress.run(args, check=False)
        body, _, code = res.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
