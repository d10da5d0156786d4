#!/usr/bin/python3
"""gRPC calls through the proxy (Debian python3-grpcio). Prints one JSON object of results.

Usage: grpc_client.py TARGET AUTHORITY SCENARIO
  calls   unary, server/client streaming, bidi, a 16 MiB message, a deadline, a cancellation
  spaces  100 concurrent unary calls on one channel (one connection): a third with
          azds-route-as azureuser, a third default, a third none; counts per server
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc

ident = lambda b: b


def trailer(call, key):
    return dict(call.trailing_metadata() or ()).get(key)


def calls(ch, out):
    echo = ch.unary_unary("/test.Echo/Echo", ident, ident)
    resp, call = echo.with_call(b"ping", metadata=(("azds-route-as", "azureuser"),))
    out["unary"] = resp.decode()
    out["unary_served_by"] = trailer(call, "x-served-by")
    out["unary_route_as"] = trailer(call, "x-route-as")

    count = ch.unary_stream("/test.Echo/Count", ident, ident)
    out["server_stream"] = [m.decode() for m in count(b"5")]

    total = ch.stream_unary("/test.Echo/Sum", ident, ident)
    out["client_stream"] = total(iter([b"a" * 10, b"b" * 20, b"c" * 30])).decode()

    chat = ch.stream_stream("/test.Echo/Chat", ident, ident)
    out["bidi"] = [m.decode() for m in chat(iter([b"x", b"yy", b"zzz"]))]

    big = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    got = echo(big, timeout=60)
    out["big_ok"] = got == big
    out["big_len"] = len(got)

    sleep = ch.unary_unary("/test.Echo/Sleep", ident, ident)
    try:
        sleep(b"3000", timeout=0.3)
        out["deadline"] = "none"
    except grpc.RpcError as e:
        out["deadline"] = e.code().name

    fut = sleep.future(b"5000")
    time.sleep(0.3)
    fut.cancel()
    out["cancelled"] = fut.cancelled()
    cancels = ch.unary_unary("/test.Echo/Cancels", ident, ident)
    deadline = time.monotonic() + 5
    seen = 0
    while time.monotonic() < deadline:
        seen = int(cancels(b""))
        if seen >= 2:
            break
        time.sleep(0.05)
    out["server_saw_cancels"] = seen  # the deadline one and the cancelled one


def spaces(ch, out):
    echo = ch.unary_unary("/test.Echo/Echo", ident, ident)
    spaces_for = ["azureuser", "default", None]
    results = {}
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    def one(i):
        space = spaces_for[i % 3]
        md = (("azds-route-as", space),) if space else ()
        barrier.wait()
        _, call = echo.with_call(b"%d" % i, metadata=md, timeout=30)
        key = f"{space or 'none'}->{trailer(call, 'x-served-by')}"
        with lock:
            results[key] = results.get(key, 0) + 1

    with futures.ThreadPoolExecutor(max_workers=100) as pool:
        for f in [pool.submit(one, i) for i in range(100)]:
            f.result()
    out["spaces"] = results


def main():
    target, authority, scenario = sys.argv[1:4]
    opts = [("grpc.default_authority", authority),
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20)]
    out = {}
    with grpc.insecure_channel(target, options=opts) as ch:
        try:
            {"calls": calls, "spaces": spaces}[scenario](ch, out)
        except grpc.RpcError as e:
            out["error"] = f"{e.code().name}: {e.details()}"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
