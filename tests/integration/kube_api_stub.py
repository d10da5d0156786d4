"""A scripted stand-in for the Kubernetes API server's namespace endpoints, speaking the real
list/watch protocol over HTTPS: paginated lists (limit/continue) with a resourceVersion, watches
from a resourceVersion with chunked JSON events, BOOKMARK events when asked for, `410 Gone`
(as an ERROR event, as the API server sends it, or as an HTTP status) once history was
compacted, and bearer-token authentication. No real API server runs in these tests."""

import http.server
import json
import socketserver
import ssl
import threading
import urllib.parse


class KubeApiStub:
    def __init__(self, cert, key, token, page_size=2, bookmark_interval=0.5):
        self.cert, self.key, self.token = cert, key, token
        self.page_size = page_size
        self.bookmark_interval = bookmark_interval
        self.cond = threading.Condition()
        self.rv = 100
        self.namespaces = {}  # name -> object
        self.history = []  # (rv, type, object)
        self.gone_before = 0  # watches from a resourceVersion below this get 410
        self.epoch = 0  # bumped by compact(): open watches end with 410
        self.gone_as_status = False
        self.requests = []  # (kind, resourceVersion) log: "list" / "watch"
        self.server = None
        self.port = 0

    # --- cluster changes (called by the test) ---------------------------------------------------
    def _event(self, kind, name, obj):
        self.rv += 1
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if kind != "DELETED":
            self.namespaces[name] = obj
        self.history.append((self.rv, kind, obj))
        self.cond.notify_all()

    def put(self, name, labels=None):
        with self.cond:
            kind = "MODIFIED" if name in self.namespaces else "ADDED"
            self._event(kind, name, {
                "kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name, "uid": "uid-" + name, "labels": dict(labels or {},
                             **{"kubernetes.io/metadata.name": name})},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def delete(self, name):
        with self.cond:
            obj = self.namespaces.pop(name)
            self._event("DELETED", name, obj)

    def compact(self):
        """Forgets the history: every open watch, and every watch resumed from a
        resourceVersion issued so far, gets 410 Gone (a relist gets a newer one)."""
        with self.cond:
            self.gone_before = self.rv + 1
            self.rv += 1
            self.history = []
            self.epoch += 1
            self.cond.notify_all()

    def count(self, kind):
        with self.cond:
            return sum(1 for k, _ in self.requests if k == kind)

    # --- server ---------------------------------------------------------------------------------
    def start(self, port=0):
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._handle(self)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.stopping = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.port

    def stop(self):
        """The API server goes away: listener closed, open watches ended."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def _json(self, h, status, obj):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _status(self, code, reason, message):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}

    def _handle(self, h):
        url = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if h.headers.get("Authorization") != "Bearer " + self.token:
            return self._json(h, 401, self._status(401, "Unauthorized", "Unauthorized"))
        if url.path != "/api/v1/namespaces":
            return self._json(h, 404, self._status(404, "NotFound", "not found"))
        if q.get("watch") in ("true", "1"):
            return self._watch(h, q)
        with self.cond:
            self.requests.append(("list", None))
            names = sorted(self.namespaces)
            start = int(q.get("continue") or 0)
            limit = min(int(q.get("limit") or 500), self.page_size)
            page = names[start:start + limit]
            meta = {"resourceVersion": str(self.rv)}
            if start + limit < len(names):
                meta["continue"] = str(start + limit)
            items = [self.namespaces[n] for n in page]
        self._json(h, 200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta,
                            "items": items})

    def _watch(self, h, q):
        rv = int(q.get("resourceVersion") or 0)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        # A watch is the last request on its connection: when it ends, the connection closes
        # (as the API server's does when it stops or times the watch out).
        h.close_connection = True
        with self.cond:
            self.requests.append(("watch", rv))
            gone = rv < self.gone_before
            epoch = self.epoch
        if gone and self.gone_as_status:
            return self._json(h, 410, self._status(410, "Expired", "too old resource version"))
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def send(obj):
            data = (json.dumps(obj) + "\n").encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        try:
            if gone:
                send({"type": "ERROR", "object": self._status(
                    410, "Expired", f"too old resource version: {rv} ({self.gone_before})")})
                h.wfile.write(b"0\r\n\r\n")
                return
            sent = rv
            while True:
                with self.cond:
                    if self.stopping:
                        return
                    if self.epoch != epoch:
                        pending = None  # compacted while watching
                    else:
                        pending = [e for e in self.history if e[0] > sent]
                    if pending == []:
                        self.cond.wait(self.bookmark_interval)
                        if self.stopping:
                            return
                        pending = [e for e in self.history if e[0] > sent]
                        if self.epoch != epoch:
                            pending = None
                        elif not pending and bookmarks:
                            send({"type": "BOOKMARK", "object": {
                                "kind": "Namespace", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(self.rv)}}})
                            sent = self.rv
                            continue
                if pending is None:
                    send({"type": "ERROR", "object": self._status(
                        410, "Expired", "too old resource version")})
                    h.wfile.write(b"0\r\n\r\n")
                    return
                for ev_rv, kind, obj in pending:
                    send({"type": kind, "object": obj})
                    sent = ev_rv
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
