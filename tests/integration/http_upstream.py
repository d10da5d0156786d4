#!/usr/bin/env python3
"""A real HTTP/1.1 origin for the HTTP integration tests (stdlib only).

GET  /hello           -> "hello"
GET  /headers         -> the request head as received (text)
GET  /bytes?n=N       -> N bytes, chunked
GET  /whoami          -> the local address the request arrived on
GET  /slow?s=S        -> "slow" after S seconds
POST /sum             -> "<count> <sha256>" of the request body (Content-Length or chunked)
Without arguments: listens on 127.0.0.1:0, prints the port, exits when stdin closes.
With `HOST PORT`: listens there and serves until killed (e2e apps).
"""
import hashlib
import socket
import http.server
import socketserver
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        # Head and body are separate writes: without NODELAY, Nagle waits for the peer's ACK.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def _send(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/hello":
            self._send(b"hello")
        elif url.path == "/headers":
            head = self.requestline + "\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in self.headers.items())
            self._send(head.encode())
        elif url.path == "/whoami":
            self._send(self.connection.getsockname()[0].encode())
        elif url.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(url.query)["s"][0]))
            self._send(b"slow")
        elif url.path == "/bytes":
            n = int(urllib.parse.parse_qs(url.query)["n"][0])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * 65536
            while n > 0:
                k = min(n, len(block))
                self.wfile.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                n -= k
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_error(404)

    do_HEAD = do_GET

    def do_POST(self):
        h = hashlib.sha256()
        count = 0
        if self.headers.get("Expect", "").lower() == "100-continue":
            pass  # BaseHTTPRequestHandler already answered 100 Continue
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 16))
                    h.update(data)
                    count += len(data)
                    left -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    break
                h.update(data)
                count += len(data)
                left -= len(data)
        self._send(f"{count} {h.hexdigest()}".encode())

    do_PUT = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) == 3:
        Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
        return
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(srv.server_address[1], flush=True)
    sys.stdin.read()
    srv.shutdown()


if __name__ == "__main__":
    main()
