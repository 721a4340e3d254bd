#!/usr/bin/python3
"""A binary protocol client (python3-pylibmc with binary=True) against a server that does not
speak the binary protocol (sn-kv) must fail at once, not hang until its timeout; against one
that does (memcached, --ref), the same calls must work, which shows the client was really
speaking the binary protocol.

    kv_binary.py --sut HOST:PORT [--ref HOST:PORT] [--limit SECONDS]

Each call gets the client's own timeouts (10 s); a call on the server under test must end,
with an error, within --limit seconds (default 2). The last line is "kv_binary: ... ok".
"""

import argparse
import sys
import time

import pylibmc

TIMEOUT_MS = 10000


def client(addr):
    return pylibmc.Client([addr], binary=True,
                          behaviors={"connect_timeout": TIMEOUT_MS,
                                     "receive_timeout": TIMEOUT_MS * 1000,
                                     "send_timeout": TIMEOUT_MS * 1000})


def timed(fn):
    t0 = time.monotonic()
    try:
        res = ("returned", fn())
    except pylibmc.Error as e:
        res = ("raised", "%s: %s" % (type(e).__name__, str(e)[:120]))
    return res, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sut", required=True)
    ap.add_argument("--ref")
    ap.add_argument("--limit", type=float, default=2.0)
    args = ap.parse_args()
    ok = True
    if args.ref:
        c = client(args.ref)
        (r1, _), (r2, _) = timed(lambda: c.set("bin", b"v")), timed(lambda: c.get("bin"))
        if r1 != ("returned", True) or r2 != ("returned", b"v"):
            print("kv_binary: the reference does not answer binary set/get: %r %r" % (r1, r2))
            ok = False
    calls = [("set", lambda c: c.set("bin", b"v")), ("get", lambda c: c.get("bin")),
             ("incr", lambda c: c.incr("n")), ("delete", lambda c: c.delete("bin"))]
    for name, call in calls:
        c = client(args.sut)  # a fresh connection: the server closes after its answer
        res, took = timed(lambda: call(c))
        print("kv_binary: %s -> %s %s in %.3f s" % (name, res[0], res[1], took))
        if took > args.limit:
            print("kv_binary: %s took %.1f s, over the %.1f s limit" % (name, took, args.limit))
            ok = False
        if name == "set" and res[0] != "raised":
            print("kv_binary: set was expected to fail")
            ok = False
        if name == "get" and res not in (("returned", None),) and res[0] != "raised":
            print("kv_binary: get was expected to fail or miss")
            ok = False
    if ok:
        print("kv_binary: binary clients fail at once ok")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
