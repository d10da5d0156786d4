#!/usr/bin/env python3
"""A tiny service for the dev-spaces walk-through: answers who it is and which route header it
saw, and (with --call) calls the next service, copying the route header onto that call as a
dev-spaces app must. Python standard library only."""

import argparse
import http.server
import os
import urllib.request

ROUTE_HEADER = os.environ.get("DEVSPACES_ROUTE_HEADER", "azds-route-as")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="service name, e.g. servicea")
    ap.add_argument("--space", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--call", action="append", default=[], help="URL to call for each request")
    args = ap.parse_args()
    me = f"{args.name}.{args.space}"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            route = self.headers.get(ROUTE_HEADER)
            lines = [f"{me} answered {self.path} ({ROUTE_HEADER}: {route or '-'})"]
            for url in args.call:
                req = urllib.request.Request(url)
                if route:
                    req.add_header(ROUTE_HEADER, route)
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        body = resp.read().decode()
                    lines += ["  " + line for line in body.splitlines()]
                except Exception as e:  # noqa: BLE001 - shown to the caller
                    lines.append(f"  call {url} failed: {e}")
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
