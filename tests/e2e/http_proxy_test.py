#!/usr/bin/env python3
"""End to end: the HTTP data path of devspaces-proxy in network namespaces with the real init
(iptables), the proxy as UID 1337 and real clients.

    cli (198.18.10.1) --veth-- pod (198.18.10.2 | 198.18.11.1) --veth-- svc (198.18.11.2, .3)

pod runs the app (tests/integration/http_upstream.py on :8080, a WebSocket echo server on :8081),
`devspaces-proxy-init apply` and `devspaces-proxy`. svc runs the same origin on :80 on two
addresses that stand for serviceb in spaces default (.2) and azureuser (.3).
"""

import base64
import hashlib
import http.client
import os
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netns  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = os.path.join(HERE, "..", "integration", "http_upstream.py")
POD_IP = "198.18.10.2"
SVC_DEFAULT = "198.18.11.2"
SVC_USER = "198.18.11.3"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# A minimal RFC 6455 echo server (stdlib only): handshake, then echoes text frames back.
WS_SERVER = r'''
import base64, hashlib, socket, struct, sys, threading
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.recv(4096)
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
    try:
        while True:
            b0, b1 = recv_exact(c, 2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", recv_exact(c, 2))[0]
            mask = recv_exact(c, 4)
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(recv_exact(c, n)))
            if b0 & 0x0F == 8:
                c.sendall(b"\x88\x00")
                break
            out = b"echo:" + data
            c.sendall(bytes([0x81, len(out)]) + out)
    except EOFError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def bin_dir():
    d = os.environ.get("DEVSPACES_BIN_DIR")
    if not d:
        raise RuntimeError("DEVSPACES_BIN_DIR must name the build directory")
    return d


class HttpProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab("http_proxy")
        try:
            cls._build()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def _build(cls):
        lab = cls.lab
        cls.cli = lab.namespace("cli")
        cls.pod = lab.namespace("pod")
        cls.svc = lab.namespace("svc")
        lab.veth(cls.cli, "198.18.10.1/24", cls.pod, POD_IP + "/24")
        lab.veth(cls.pod, "198.18.11.1/24", cls.svc, SVC_DEFAULT + "/24")
        svc_dev = cls.svc.run(["ip", "-o", "-4", "addr", "show", "to", SVC_DEFAULT]).stdout.split()[1]
        cls.svc.run(["ip", "addr", "add", SVC_USER + "/24", "dev", svc_dev])
        cls.cli.run(["ip", "route", "add", "198.18.11.0/24", "via", POD_IP])
        cls.svc.run(["ip", "route", "add", "198.18.10.0/24", "via", "198.18.11.1"])
        cls.pod.hosts_file("127.0.0.1 localhost\n"
                           f"{SVC_DEFAULT} serviceb.default.svc.cluster.local\n"
                           f"{SVC_USER} serviceb.azureuser.svc.cluster.local\n")
        cls.tmp = tempfile.mkdtemp(prefix="http_proxy_e2e_")
        os.chmod(cls.tmp, 0o755)
        # Apps.
        cls.svc.popen(["python3", ORIGIN, "0.0.0.0", "80"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        cls.pod.popen(["python3", ORIGIN, "0.0.0.0", "8080"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        cls.pod.popen(["python3", "-c", WS_SERVER, "8081"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
        cls.svc.wait_port(SVC_DEFAULT, 80)
        cls.pod.wait_port("127.0.0.1", 8080)
        cls.pod.wait_port("127.0.0.1", 8081)
        # Capture, then the proxy as UID 1337.
        cls.pod.run([os.path.join(bin_dir(), "init", "devspaces-proxy-init"), "apply",
                     "--space", "azureuser", "--parent-spaces", "default", "--ipv6", "off",
                     "--resolv-conf", ""])
        cls.log_path = os.path.join(cls.tmp, "proxy.log")
        env = dict(os.environ, POD_NAME="pod-http", POD_NAMESPACE="azureuser")
        # setpriv inside the namespace: dropping the UID before `ip netns exec` would fail.
        cls.log_file = open(cls.log_path, "w")
        cls.proxy = cls.pod.popen(
            ["setpriv", f"--reuid={netns.PROXY_UID}", f"--regid={netns.PROXY_UID}",
             "--clear-groups", "--",
             os.path.join(bin_dir(), "proxy", "devspaces-proxy"), "--space", "azureuser",
             "--parent-spaces", "default", "--admin-address", "127.0.0.1:15090",
             "--resolver", "hosts:/etc/hosts", "--header-timeout", "1s",
             "--connect-timeout", "1s", "--max-header-bytes", "4096", "--log-level", "debug"],
            env=env, stdout=cls.log_file, stderr=subprocess.STDOUT)
        netns.wait_until(lambda: cls.admin("/readyz").endswith("\n200"), 15, "proxy ready")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()
        cls.log_file.close()
        if os.environ.get("KEEP_LOGS") is None:
            subprocess.run(["rm", "-rf", cls.tmp], check=False)

    @classmethod
    def admin(cls, path):
        return cls.pod.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5",
                            f"http://127.0.0.1:15090{path}"], check=False).stdout

    def py(self, ns, code, timeout=120):
        """Runs python code inside a namespace; returns stdout (fails the test on error)."""
        res = ns.run(["timeout", str(timeout), "python3", "-c", code], check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        return res.stdout

    def raw(self, payload, port=8080, timeout=10):
        """Sends raw bytes from the client namespace to the pod; returns all bytes received."""
        code = (
            "import socket,sys\n"
            f"s=socket.create_connection(({POD_IP!r},{port}),timeout={timeout})\n"
            f"s.sendall({payload!r})\n"
            "out=b''\n"
            "try:\n"
            "  while True:\n"
            "    d=s.recv(65536)\n"
            "    if not d: break\n"
            "    out+=d\n"
            "except socket.timeout: pass\n"
            "sys.stdout.write(out.hex())\n")
        # Hex on the wire: text-mode output would turn CRLF into LF.
        return bytes.fromhex(self.py(self.cli, code, timeout + 20).strip()).decode("latin-1")

    # ---- routing

    def test_inbound_adds_route_header_from_host(self):
        out = self.raw(b"GET /headers HTTP/1.1\r\nHost: azureuser.s.default.app.example.io\r\n"
                       b"Connection: close\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 200"), out)
        self.assertIn("azds-route-as: azureuser\r\n", out)

    def test_outbound_routes_each_request_on_one_keep_alive_connection(self):
        code = (
            "import http.client\n"
            f"c=http.client.HTTPConnection({SVC_DEFAULT!r},80,timeout=10)\n"
            "ports=set(); out=[]\n"
            "for h in ['azureuser','default',None,'azureuser','not_a_label']:\n"
            "  hd={'Host':'serviceb'}\n"
            "  if h: hd['azds-route-as']=h\n"
            "  c.request('GET','/whoami',headers=hd)\n"
            "  r=c.getresponse(); out.append(r.read().decode())\n"
            "  ports.add(c.sock.getsockname()[1])\n"
            "print(len(ports), ' '.join(out))\n")
        out = self.py(self.pod, code).strip()
        self.assertEqual(out, f"1 {SVC_USER} {SVC_DEFAULT} {SVC_DEFAULT} {SVC_USER} {SVC_DEFAULT}")

    # ---- message shapes

    def test_websocket_through_the_proxy(self):
        code = (
            "import base64,os,socket,struct,hashlib\n"
            f"s=socket.create_connection(({POD_IP!r},8081),timeout=10)\n"
            "key=base64.b64encode(os.urandom(16))\n"
            "s.sendall(b'GET /chat HTTP/1.1\\r\\nHost: pod\\r\\nUpgrade: websocket\\r\\n'\n"
            "          b'Connection: Upgrade\\r\\nSec-WebSocket-Version: 13\\r\\n'\n"
            "          b'Sec-WebSocket-Key: '+key+b'\\r\\n\\r\\n')\n"
            "head=b''\n"
            "while b'\\r\\n\\r\\n' not in head: head+=s.recv(1)\n"
            f"acc=base64.b64encode(hashlib.sha1(key+{WS_GUID!r}.encode()).digest())\n"
            "assert head.startswith(b'HTTP/1.1 101'), head\n"
            "assert acc in head, head\n"
            "def frame(op,data):\n"
            "  m=os.urandom(4)\n"
            "  return bytes([0x80|op,0x80|len(data)])+m+bytes(b^m[i%4] for i,b in enumerate(data))\n"
            "got=[]\n"
            "for msg in [b'one',b'two',b'three']:\n"
            "  s.sendall(frame(1,msg))\n"
            "  h=s.recv(2); got.append(s.recv(h[1]).decode())\n"
            "s.sendall(frame(8,b''))\n"
            "print(' '.join(got), s.recv(2)==b'\\x88\\x00')\n")
        self.assertEqual(self.py(self.cli, code).strip(), "echo:one echo:two echo:three True")

    def test_100_mib_chunked_upload_checksum(self):
        code = (
            "import hashlib,http.client\n"
            "h=hashlib.sha256(); total=0\n"
            "def body():\n"
            "  global total\n"
            "  block=bytes(range(256))*4096\n"
            "  for i in range(100):\n"
            "    b=bytes([i])+block[1:]\n"
            "    h.update(b); total+=len(b)\n"
            "    yield b\n"
            f"c=http.client.HTTPConnection({POD_IP!r},8080,timeout=60)\n"
            "c.request('POST','/sum',body=body(),encode_chunked=True,\n"
            "          headers={'Transfer-Encoding':'chunked'})\n"
            "r=c.getresponse(); got=r.read().decode()\n"
            "print(r.status, got == '%d %s' % (total, h.hexdigest()), total)\n")
        self.assertEqual(self.py(self.cli, code, 300).strip(), "200 True 104857600")

    def test_pipelined_requests_answered_in_order(self):
        reqs = b"".join(b"GET /headers HTTP/1.1\r\nHost: pod\r\nX-Seq: %d\r\n\r\n" % i
                        for i in range(5))
        out = self.raw(reqs + b"GET /hello HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        positions = [out.find("X-Seq: %d\r\n" % i) for i in range(5)]
        self.assertTrue(all(p >= 0 for p in positions), out)
        self.assertEqual(positions, sorted(positions))
        self.assertEqual(out.count("HTTP/1.1 200 OK"), 6)
        self.assertTrue(out.endswith("hello"), out)

    # ---- error answers

    def assert_answer(self, out, status, reason_part):
        self.assertTrue(out.startswith(f"HTTP/1.1 {status} "), out)
        body = out.split("\r\n\r\n", 1)[1]
        self.assertTrue(body.startswith("devspaces-proxy: "), body)
        self.assertIn(reason_part, body)
        self.assertTrue(body.endswith("\n") and body.count("\n") == 1, body)

    def test_error_400_smuggling(self):
        out = self.raw(b"POST /sum HTTP/1.1\r\nHost: pod\r\nContent-Length: 4\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assert_answer(out, 400, "both Content-Length and Transfer-Encoding")

    def test_error_431_oversized_head(self):
        out = self.raw(b"GET / HTTP/1.1\r\nHost: pod\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n")
        self.assert_answer(out, 431, "too large")

    def test_error_408_slow_head(self):
        out = self.raw(b"GET / HTTP/1.1\r\nHost: po", timeout=10)
        self.assert_answer(out, 408, "timeout")

    def test_error_502_nothing_listening(self):
        out = self.raw(b"GET / HTTP/1.1\r\nHost: pod\r\n\r\n", port=8099)
        self.assert_answer(out, 502, "refused")

    def test_error_504_response_head_timeout(self):
        out = self.raw(b"GET /slow?s=3 HTTP/1.1\r\nHost: pod\r\n\r\n")
        self.assert_answer(out, 504, "gateway timeout")

    def test_metrics_count_requests(self):
        self.raw(b"GET /hello HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        metrics = self.admin("/metrics")
        self.assertRegex(metrics, r'devspaces_proxy_http_requests_total\{[^}]*code_class="2xx"'
                                  r'[^}]*direction="inbound"[^}]*method="GET"[^}]*\} [1-9]')


if __name__ == "__main__":
    unittest.main(verbosity=2)
