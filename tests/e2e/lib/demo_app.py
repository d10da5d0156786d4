#!/usr/bin/env python3
"""A tiny service for the dev-spaces walk-through: answers who it is and which route header it
saw, and (with --call) calls the next service, copying the route header onto that call as a
dev-spaces app must. With --propagate traceparent it behaves like an app whose only
instrumentation is an OpenTelemetry SDK: it forwards the W3C `traceparent` (same trace id, a new
span id) and forgets the route header. Python standard library only."""

import argparse
import http.server
import os
import secrets
import time
import urllib.request

ROUTE_HEADER = os.environ.get("DEVSPACES_ROUTE_HEADER", "azds-route-as")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="service name, e.g. servicea")
    ap.add_argument("--space", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--call", action="append", default=[], help="URL to call for each request")
    ap.add_argument("--propagate", choices=["route", "traceparent"], default="route",
                    help="what the app copies onto its calls: the route header, or traceparent")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait before calling")
    args = ap.parse_args()
    me = f"{args.name}.{args.space}"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            route = self.headers.get(ROUTE_HEADER)
            lines = [f"{me} answered {self.path} ({ROUTE_HEADER}: {route or '-'})"]
            if args.delay:
                time.sleep(args.delay)
            parent = self.headers.get("traceparent")
            for url in args.call:
                req = urllib.request.Request(url)
                if args.propagate == "route" and route:
                    req.add_header(ROUTE_HEADER, route)
                if args.propagate == "traceparent" and parent and len(parent) >= 55:
                    # Same trace, a new span: what an SDK's propagator sends.
                    req.add_header("traceparent",
                                   f"{parent[:2]}-{parent[3:35]}-{secrets.token_hex(8)}-{parent[53:55]}")
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
