#!/usr/bin/python3
"""The walk-through service over gRPC (Debian python3-grpcio, generic handler, no generated
code): method /demo.Walk/Hello answers who it is and which azds-route-as metadata it saw, and
(with --call) calls /demo.Walk/Hello on the next service, copying the route metadata onto that
call as a dev-spaces app must."""

import argparse
import os
from concurrent import futures

import grpc

ROUTE_HEADER = os.environ.get("DEVSPACES_ROUTE_HEADER", "azds-route-as")


def ident(b):
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--space", required=True)
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--call", action="append", default=[], help="host:port to call")
    args = ap.parse_args()
    me = f"{args.name}.{args.space}"

    def hello(req, ctx):
        md = dict(ctx.invocation_metadata())
        route = md.get(ROUTE_HEADER)
        lines = [f"{me} answered {req.decode()} ({ROUTE_HEADER}: {route or '-'})"]
        for target in args.call:
            try:
                with grpc.insecure_channel(target) as ch:
                    call = ch.unary_unary("/demo.Walk/Hello", ident, ident)
                    body = call(b"/api", metadata=((ROUTE_HEADER, route),) if route else (),
                                timeout=10).decode()
                lines += ["  " + line for line in body.splitlines()]
            except grpc.RpcError as e:
                lines.append(f"  call {target} failed: {e.code().name} {e.details()}")
        return ("\n".join(lines) + "\n").encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "demo.Walk", {"Hello": grpc.unary_unary_rpc_method_handler(hello, ident, ident)}),))
    server.add_insecure_port(f"0.0.0.0:{args.port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
