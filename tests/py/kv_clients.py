#!/usr/bin/python3
"""Real memcached clients against a reference server and the server under test: Debian's
python3-pymemcache and python3-pylibmc (libmemcached) drive both through their ordinary APIs,
and every result must be the same.

    kv_clients.py --ref HOST:PORT --sut HOST:PORT [--seed N] [--rounds N] [--item-max BYTES]

Covered, with binary-safe values (all 256 byte values, "\\r\\n", NULs) and values near and
over the item size limit: get, set, add, replace, append, prepend, delete, incr, decr, touch,
gets + cas (with a fresh and a stale token), multi-get (get_many / get_multi), flush_all.
cas tokens differ between servers (each numbers its own); only what a client sees of them is
compared: the token of gets is an integer, cas with it succeeds, cas with an older one fails.
The last line is "kv_clients: clients=... ops=... ok".
"""

import argparse
import random
import sys

import pylibmc
from pymemcache.client.base import Client as PymemcacheClient

TIMEOUT = 10.0


def outcome(fn, *args, **kw):
    """What a call did, comparable across servers: its result or its exception."""
    try:
        return ("ok", fn(*args, **kw))
    except Exception as e:  # the exception class and text are part of the answer
        return ("raised", type(e).__name__, str(e).split(" host:")[0].split("(0x")[0])


class Pymemcache:
    name = "pymemcache"

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.c = PymemcacheClient((host, int(port)), connect_timeout=TIMEOUT, timeout=TIMEOUT,
                                  default_noreply=False)

    def get(self, k): return self.c.get(k)
    def set(self, k, v, t=0): return self.c.set(k, v, expire=t)
    def add(self, k, v): return self.c.add(k, v)
    def replace(self, k, v): return self.c.replace(k, v)
    def append(self, k, v): return self.c.append(k, v)
    def prepend(self, k, v): return self.c.prepend(k, v)
    def delete(self, k): return self.c.delete(k)
    def incr(self, k, n): return self.c.incr(k, n)
    def decr(self, k, n): return self.c.decr(k, n)
    def touch(self, k, t): return self.c.touch(k, t)
    def gets(self, k): return self.c.gets(k)
    def cas(self, k, v, token): return self.c.cas(k, v, token)
    def get_many(self, ks): return self.c.get_many(ks)
    def flush(self): return self.c.flush_all()
    def close(self): self.c.close()


class Pylibmc:
    name = "pylibmc"

    def __init__(self, addr):
        self.c = pylibmc.Client([addr], binary=False,
                                behaviors={"cas": True, "connect_timeout": int(TIMEOUT * 1000),
                                           "receive_timeout": int(TIMEOUT * 1e6),
                                           "send_timeout": int(TIMEOUT * 1e6)})

    def get(self, k): return self.c.get(k)
    def set(self, k, v, t=0): return self.c.set(k, v, time=t)
    def add(self, k, v): return self.c.add(k, v)
    def replace(self, k, v): return self.c.replace(k, v)
    def append(self, k, v): return self.c.append(k, v)
    def prepend(self, k, v): return self.c.prepend(k, v)
    def delete(self, k): return self.c.delete(k)
    def incr(self, k, n): return self.c.incr(k, n)
    def decr(self, k, n): return self.c.decr(k, n)
    def touch(self, k, t): return self.c.touch(k, t)
    def gets(self, k): return self.c.gets(k)
    def cas(self, k, v, token): return self.c.cas(k, v, token)
    def get_many(self, ks): return self.c.get_multi(ks)
    def flush(self): return self.c.flush_all()
    def close(self): self.c.disconnect_all()


def values(rnd, item_max):
    yield b""
    yield bytes(range(256))
    yield b"line\r\nbreak\r\n\x00\x00end"
    yield b"\r\n"
    yield bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 5000)))
    yield b"v" * 100000
    yield bytes(rnd.getrandbits(8) for _ in range(64)) * ((item_max - 4096) // 64)


def tokens_shape(res):
    """gets: (value, token) -> (value, token is an int)."""
    if res[0] == "ok" and isinstance(res[1], tuple) and len(res[1]) == 2:
        return ("ok", (res[1][0], isinstance(res[1][1], int)))
    return res


def one_round(rnd, cl, item_max, log):
    """A round of ordinary calls on one client; log(label, outcome) records each result."""
    keys = ["key%d" % i for i in range(6)]
    for k in keys:
        log("delete", outcome(cl.delete, k))
    for i, v in enumerate(values(rnd, item_max)):
        k = keys[i % len(keys)]
        log("set", outcome(cl.set, k, v))
        log("get", outcome(cl.get, k))
    log("too large", outcome(cl.set, "big", b"x" * (item_max + 4096)))
    log("get big", outcome(cl.get, "big"))
    log("add existing", outcome(cl.add, keys[0], b"a"))
    log("add new", outcome(cl.add, "fresh", b"a"))
    log("replace missing", outcome(cl.replace, "nope", b"r"))
    log("replace", outcome(cl.replace, "fresh", b"rr"))
    log("append", outcome(cl.append, "fresh", b"\r\nz"))
    log("prepend", outcome(cl.prepend, "fresh", b"\x00y"))
    log("append missing", outcome(cl.append, "nope", b"z"))
    log("get", outcome(cl.get, "fresh"))
    log("set n", outcome(cl.set, "n", b"10"))
    log("incr", outcome(cl.incr, "n", 5))
    log("incr big", outcome(cl.incr, "n", 2 ** 62))
    log("decr", outcome(cl.decr, "n", 100))
    log("get n", outcome(cl.get, "n"))
    log("incr missing", outcome(cl.incr, "nope", 1))
    log("incr non-numeric", outcome(cl.incr, "fresh", 1))
    log("touch", outcome(cl.touch, "fresh", 1000))
    log("touch missing", outcome(cl.touch, "nope", 1000))
    g = outcome(cl.gets, "fresh")
    log("gets", tokens_shape(g))
    if g[0] == "ok" and g[1][1] is not None:
        token = g[1][1]
        log("cas fresh token", outcome(cl.cas, "fresh", b"new", token))
        log("cas old token", outcome(cl.cas, "fresh", b"newer", token))
        log("get after cas", outcome(cl.get, "fresh"))
    log("cas missing", outcome(cl.cas, "nope", b"x", 12345))
    many = keys + ["fresh", "nope", "n"]
    rnd.shuffle(many)
    log("multi-get", outcome(cl.get_many, many))
    log("delete", outcome(cl.delete, "fresh"))
    log("delete missing", outcome(cl.delete, "fresh"))
    log("set ttl past", outcome(cl.set, "gone", b"x", -1))
    log("get gone", outcome(cl.get, "gone"))
    log("flush", outcome(cl.flush))
    log("get after flush", outcome(cl.get, keys[0]))


def run_client(kind, ref_addr, sut_addr, seed, rounds, item_max):
    results = []
    for addr in (ref_addr, sut_addr):
        rnd = random.Random(seed)
        cl = kind(addr)
        out = []
        for _ in range(rounds):
            one_round(rnd, cl, item_max, lambda label, res: out.append((label, res)))
        cl.close()
        results.append(out)
    ref, sut = results
    for i, (a, b) in enumerate(zip(ref, sut)):
        if a != b:
            print("kv_clients: %s: call %d (%s) differs (seed %d)" % (kind.name, i, a[0], seed))
            print("  ref: %.300r" % (a[1],))
            print("  sut: %.300r" % (b[1],))
            return None
    if len(ref) != len(sut):
        print("kv_clients: %s: %d calls against %d" % (kind.name, len(ref), len(sut)))
        return None
    return len(ref)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--sut", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--item-max", type=int, default=1 << 20)
    args = ap.parse_args()
    ops = 0
    for kind in (Pymemcache, Pylibmc):
        n = run_client(kind, args.ref, args.sut, args.seed, args.rounds, args.item_max)
        if n is None:
            return 1
        print("kv_clients: %s: %d calls, same results" % (kind.name, n), flush=True)
        ops += n
    print("kv_clients: clients=pymemcache,pylibmc ops=%d ok" % ops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
