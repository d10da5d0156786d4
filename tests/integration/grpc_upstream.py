#!/usr/bin/python3
"""gRPC test servers (Debian python3-grpcio, generic handlers, no generated code).

Usage: grpc_upstream.py NAME=ADDR [NAME=ADDR ...]
Each ADDR is host:port (port 0 picks one; later servers may reuse it as host:same). Prints the
bound ports, one line, space separated, then serves until stdin closes.

Service test.Echo (requests and responses are raw bytes):
  Echo     unary: the request back; trailing metadata x-served-by=NAME and
           x-route-as=<azds-route-as seen>
  Count    server streaming: int(request) messages "0", "1", ...
  Sum      client streaming: the total length of all requests, as text
  Chat     bidi: each request back as it comes
  Sleep    unary: sleeps int(request) ms (deadline and cancellation tests); records cancels
  Cancels  unary: how many Sleep calls saw their cancellation, as text
"""
import sys
import threading
import time
from concurrent import futures

import grpc

cancels = 0
lock = threading.Lock()


def ident(b):
    return b


def handlers(name):
    def meta(ctx):
        md = dict(ctx.invocation_metadata())
        ctx.set_trailing_metadata((("x-served-by", name), ("x-route-as", md.get("azds-route-as", ""))))

    def echo(req, ctx):
        meta(ctx)
        return req

    def count(req, ctx):
        meta(ctx)
        for i in range(int(req)):
            yield str(i).encode()

    def total(it, ctx):
        meta(ctx)
        return str(sum(len(m) for m in it)).encode()

    def chat(it, ctx):
        meta(ctx)
        for m in it:
            yield m

    def sleep(req, ctx):
        global cancels
        end = time.monotonic() + int(req) / 1000
        while time.monotonic() < end:
            if not ctx.is_active():
                with lock:
                    cancels += 1
                return b""
            time.sleep(0.01)
        return b"slept"

    def get_cancels(req, ctx):
        with lock:
            return str(cancels).encode()

    u = lambda f: grpc.unary_unary_rpc_method_handler(f, ident, ident)
    return grpc.method_handlers_generic_handler("test.Echo", {
        "Echo": u(echo),
        "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
        "Sum": grpc.stream_unary_rpc_method_handler(total, ident, ident),
        "Chat": grpc.stream_stream_rpc_method_handler(chat, ident, ident),
        "Sleep": u(sleep),
        "Cancels": u(get_cancels),
    })


def main():
    opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    servers, ports = [], []
    last = 0
    for arg in sys.argv[1:]:
        name, addr = arg.split("=", 1)
        host, port = addr.rsplit(":", 1)
        port = last if port == "same" else int(port)
        s = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=opts,
                        maximum_concurrent_rpcs=None)
        s.add_generic_rpc_handlers((handlers(name),))
        got = s.add_insecure_port(f"{host}:{port}")
        s.start()
        servers.append(s)
        ports.append(got)
        last = got
    print(" ".join(str(p) for p in ports), flush=True)
    sys.stdin.read()
    for s in servers:
        s.stop(0)


if __name__ == "__main__":
    main()
