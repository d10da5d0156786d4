#!/usr/bin/env python3
"""One unary gRPC call, as an app in a pod makes it: grpc_call.py TARGET PATH [KEY=VALUE ...].
Prints the answer, or `ERROR <code> <details>`."""

import sys

import grpc


def main():
    target, path = sys.argv[1:3]
    metadata = tuple(tuple(kv.split("=", 1)) for kv in sys.argv[3:])
    ident = lambda b: b  # noqa: E731 (raw bytes both ways)
    with grpc.insecure_channel(target) as ch:
        try:
            call = ch.unary_unary("/demo.Walk/Hello", ident, ident)
            print(call(path.encode(), metadata=metadata, timeout=10).decode(), end="")
        except grpc.RpcError as e:
            print("ERROR", e.code().name, e.details())


if __name__ == "__main__":
    main()
