#!/usr/bin/python3
"""Differential test: the same random streams of meta and classic memcached commands go to a
reference server (Debian's memcached 1.6.18) and to the server under test (sn-kv), and every
reply is compared byte for byte.

    kv_diff.py --ref HOST:PORT --sut HOST:PORT [--seeds 1,2,3] [--ops N] [--item-max BYTES]

Each seed starts with flush_all and runs --ops commands in pipelined batches of 1..40 on two
connections per server (a batch goes to one of them, chosen at random). Every batch ends with
"mn", so the replies to a batch are complete when "MN" comes back; replies are cut into units
(a line, or a VALUE/VA line with its data block) and compared unit by unit. Commands are mixed
on the same connections: classic storage and retrieval, incr/decr, touch/gat, meta mg/ms/md/
ma/me/mn with quiet mode, opaque tokens, base64 keys, stale and win flags, binary-safe values
up to near the item size limit, over-limit values, and malformed lines.

What is normalised, and why (everything else must be equal byte for byte):
  - cas uniques (gets, gats, mg/ms/ma c, me cas=): each server numbers its own. They are
    recorded per server and key, and commands that send a cas (cas, ms/md/ma C) are written
    per server with that server's value, so both see "the current cas", "an older one" or
    "one that never was".
  - mg t and me exp: the two servers read their clocks at different moments, and memcached
    turns an absolute expiry time into its own clock (a monotonic one that ticks once a second,
    started at a wall-clock second) with up to two seconds of skew; two seconds are accepted.
  - mg l and me la (seconds since the last access): memcached moves an item's access time when
    its LRU maintainer thread sees fit; sn-kv on every fetch.
  - me cls= and size=: slab class and memcached's item header size; sn-kv has neither.
  - VERSION: the version string.
Avoided by construction, because the reference itself is not deterministic there or because
sn-kv differs on purpose (docs/RELIABILITY.md): TTLs that could expire during the run (only 0,
long ones, and ones already in the past are used); on counters, whatever depends on whether
incr/decr/ma rewrite the item in place or replace it, which memcached decides by whether an
earlier reply of the same pipeline still holds the item (decrements that shorten a number,
stale marks, win tokens, mg h, ma T); the E flag, numbers over 32 bits, control bytes in
keys, lines over 2048 bytes, quit.

On a mismatch it prints the seed, the batch and both replies, and exits 1. The last line is
"kv_diff: seeds=... ops=... batches=... units=... seconds=... ok".
"""

import argparse
import base64
import random
import socket
import sys
import time

IO_TIMEOUT = 30.0


class Conn:
    """One connection: send bytes, read reply units until MN."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError("server closed the connection")
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 2], self.buf[i + 2 :]
                return line
            self._fill()

    def _block(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[: n + 2], self.buf[n + 2 :]
        return data

    def unit(self):
        """A reply unit: a line, or a VALUE/VA line and its data block."""
        line = self._line()
        w = line.split(b" ")
        if line.startswith(b"VALUE ") and len(w) >= 4:
            return line + self._block(int(w[3]))
        if line.startswith(b"VA ") and len(w) >= 2:
            return line + self._block(int(w[1].rstrip(b"\r\n")))
        return line

    def units_until_mn(self, count=1):
        """Reply units up to the count-th MN (the batch's own mn commands come back too)."""
        out = []
        while True:
            u = self.unit()
            if u == b"MN\r\n":
                count -= 1
                if count == 0:
                    return out
            out.append(u)


# ---- the random stream ----------------------------------------------------------------------

TEXT_KEYS = ["k%d" % i for i in range(10)] + ["x" * 250, "k:a/b", "\xe9t\xe9"]
COUNTERS = ["n%d" % i for i in range(5)]
STALE_KEYS = ["s%d" % i for i in range(4)]
BIG_KEYS = ["big0", "big1"]
# Binary keys (sent base64 with b): bytes a text key cannot hold, and one equal to a text key.
BIN_KEYS = [b"\x00\x01", b" sp ace", b"cr\r\nlf", bytes(range(200, 220)), b"k0", b"\xff" * 40]


def b64(k):
    return base64.b64encode(k).decode()


class Gen:
    """Random commands. A command is a list of parts: bytes, or ("cas", key, how)."""

    def __init__(self, rnd, item_max, now):
        self.r = rnd
        self.item_max = item_max
        self.now = now

    def value(self):
        r = self.r
        n = r.choice([0, 1, 2, 5, 10, 30, 100, 1000, r.randint(0, 300), r.randint(0, 70000)])
        kind = r.random()
        if kind < 0.4:
            return bytes(r.getrandbits(8) for _ in range(n))
        if kind < 0.6:
            return (b"ab\r\ncd\r\n\x00" * (n // 9 + 1))[:n]
        return bytes(r.choice(b"abcdefghij xyz") for _ in range(n))

    def ttl(self, allow_past=True):
        r = self.r
        choices = [0, 0, 0, 1000, 2000, int(self.now) + 1500]
        if allow_past:
            choices += [-1, 1000000000]
        return r.choice(choices)

    def key(self):
        return self.r.choice(TEXT_KEYS)

    def cas(self, key):
        return ("cas", key, self.r.choice(["cur", "cur", "old", "never"]))

    # -- classic --

    def classic_store(self, key=None, value=None, counter=False):
        r = self.r
        key = key or self.key()
        value = self.value() if value is None else value
        verb = "set" if counter else r.choice(["set", "set", "add", "replace", "append", "prepend", "cas"])
        nr = " noreply" if r.random() < 0.15 else ""
        flags = r.choice([0, 0, 1, 4294967295, r.randint(0, 1000)])
        head = "%s %s %d %d %d" % (verb, key, flags, self.ttl(), len(value))
        parts = [head.encode("latin1")]
        if verb == "cas":
            parts += [b" ", self.cas(key)]
        parts.append(nr.encode() + b"\r\n" + value + b"\r\n")
        return parts

    def classic_get(self, keys=None):
        r = self.r
        keys = keys or [self.key() for _ in range(r.randint(1, 5))]
        verb = r.choice(["get", "gets", "gat", "gats"])
        t = " %d" % self.ttl(False) if verb.startswith("gat") else ""
        return [("%s%s %s\r\n" % (verb, t, " ".join(keys))).encode("latin1")]

    def classic_other(self, key=None):
        r = self.r
        key = key or self.key()
        nr = " noreply" if r.random() < 0.15 else ""
        if r.random() < 0.5:
            return [("delete %s%s\r\n" % (key, nr)).encode("latin1")]
        return [("touch %s %d%s\r\n" % (key, self.ttl(), nr)).encode("latin1")]

    # -- meta --

    def meta_key(self, key=None):
        """(key as sent, flags to add): sometimes a base64 binary key."""
        if key is None and self.r.random() < 0.2:
            return b64(self.r.choice(BIN_KEYS)), ["b"]
        return key or self.key(), []

    def opaque(self):
        return "O" + "".join(self.r.choice("abc123") for _ in range(self.r.randint(0, 8)))

    def mg(self, key=None, counter=False):
        r = self.r
        k, flags = self.meta_key(key)
        pool = ["v", "s", "f", "t", "l", "k", "q", "u", self.opaque(), "T%d" % self.ttl(False)]
        # A counter's item is replaced or changed in place by incr/ma depending on whether an
        # earlier reply of the same batch still holds it (memcached's refcount): its fetched
        # bit and win token are not deterministic there.
        if not counter:
            pool += ["h", "R%d" % r.choice([0, 10, 5000])]
        if not counter and not flags:  # created by N, a binary key comes back raw
            pool.append("N%d" % r.choice([0, 1000]))
        flags += r.sample(pool, r.randint(0, 6))
        if "c" not in flags and r.random() < 0.3:
            flags.append("c")
        if "c" in flags and "k" not in flags:
            flags.append("k")  # a cas is recorded by key
        r.shuffle(flags)
        return [("mg %s %s\r\n" % (k, " ".join(flags))).encode("latin1")]

    def ms(self, key=None, value=None, counter=False):
        r = self.r
        k, flags = self.meta_key(key)
        value = self.value() if value is None else value
        pool = ["q", "k", self.opaque(), "T%d" % self.ttl(), "F%d" % r.choice([0, 7, 4294967295])]
        if not counter:
            # An appended item is not marked binary: its key would come back raw (k), and a
            # raw "\r\n" in a key would cut the reply where the servers' cas values differ.
            pool += ["M" + r.choice("ERS" if flags else "EAPRS"), "I"]
        flags += r.sample(pool, r.randint(0, 4))
        if r.random() < 0.3:
            flags += ["c", "k"] if "k" not in flags else ["c"]
        parts = [("ms %s %d" % (k, len(value))).encode("latin1")]
        for f in flags:
            parts.append((" " + f).encode("latin1"))
        if not counter and r.random() < 0.25:
            parts += [b" C", self.cas(self._plain(k, flags))]
        parts.append(b"\r\n" + value + b"\r\n")
        return parts

    def _plain(self, k, flags):
        return base64.b64decode(k).decode("latin1") if "b" in flags else k

    def md(self, key=None, stale_ok=True):
        r = self.r
        k, flags = self.meta_key(key)
        pool = ["q", "k", self.opaque()]
        if stale_ok:
            pool += ["I", "T%d" % r.choice([0, 1000])]
        flags += r.sample(pool, r.randint(0, 3))
        parts = [("md %s" % k).encode("latin1")]
        for f in flags:
            parts.append((" " + f).encode("latin1"))
        if r.random() < 0.2:
            parts += [b" C", self.cas(self._plain(k, flags))]
        parts.append(b"\r\n")
        return parts

    def ma(self, key):
        r = self.r
        # No T: when an earlier reply of the batch still holds the item, memcached replaces it
        # and applies T to the old copy (lost); sn-kv always applies it.
        flags = r.sample(["q", "v", "t", "k", self.opaque()], r.randint(0, 4))
        mode = r.choice(["", "", "MI", "M+", "MD", "M-"])
        if mode:
            flags.append(mode)
        flags.append("D%d" % r.randint(0, 100))
        if r.random() < 0.4:
            flags += ["N%d" % r.choice([0, 1000]), "J%d" % r.randint(2000000, 8000000)]
        if r.random() < 0.3:
            flags += ["c"] + ([] if "k" in flags else ["k"])
        r.shuffle(flags)
        parts = [("ma %s %s" % (key, " ".join(flags))).encode()]
        if r.random() < 0.15:
            parts += [b" C", self.cas(key)]
        parts.append(b"\r\n")
        return parts

    # -- families of keys --

    def counter_cmd(self):
        r = self.r
        key = r.choice(COUNTERS)
        n = str(r.randint(2000000, 8000000)).encode()
        c = r.random()
        if c < 0.15:
            return self.classic_store(key, n, counter=True)
        if c < 0.25:
            return self.ms(key, n, counter=True)
        if c < 0.55:
            return self.ma(key)
        if c < 0.7:
            verb = r.choice(["incr", "decr"])
            nr = " noreply" if r.random() < 0.15 else ""
            return [("%s %s %d%s\r\n" % (verb, key, r.randint(0, 100), nr)).encode()]
        if c < 0.85:
            return self.mg(key, counter=True)
        if c < 0.9:
            return self.md(key, stale_ok=False)
        return self.classic_get([key])

    def stale_cmd(self):
        r = self.r
        key = r.choice(STALE_KEYS)
        c = r.random()
        if c < 0.3:
            return self.md(key)
        if c < 0.6:
            return self.mg(key)
        return self.ms(key)

    def big_cmd(self):
        r = self.r
        key = r.choice(BIG_KEYS)
        c = r.random()
        if c < 0.35:
            n = r.choice([self.item_max - 4096, self.item_max - 2048 - r.randint(0, 100000),
                          self.item_max + 4096])
            value = bytes(r.getrandbits(8) for _ in range(64)) * (n // 64) + b"z" * (n % 64)
            return self.classic_store(key, value, counter=True) if r.random() < 0.5 else \
                self.ms(key, value, counter=True)
        if c < 0.7:
            return [("mg %s v s k\r\n" % key).encode()]
        if c < 0.9:
            return [("get %s\r\n" % key).encode()]
        return [("delete %s\r\n" % key).encode()]

    def misc_cmd(self):
        r = self.r
        return [r.choice([
            b"version\r\n", b"verbosity 1\r\n", b"verbosity 0 noreply\r\n", b"mn\r\n",
            b"flush_all\r\n", b"flush_all 0\r\n", b"flush_all noreply\r\n", b"stats reset\r\n",
            ("me %s\r\n" % self.key()).encode("latin1"), ("me %s b\r\n" % b64(r.choice(BIN_KEYS))).encode(),
        ])]

    def error_cmd(self):
        r = self.r
        k = self.key().encode("latin1")
        return [r.choice([
            b"bogus\r\n", b"get\r\n", b"GET k0\r\n", b"\r\n", b"mg\r\n", b"mx k0\r\n",
            b"set k0 0 0 abc\r\n", b"set k0 0 0 3\r\nabcde\r\n", b"incr k0 abc\r\n",
            b"delete k0 5\r\n", b"touch k0 abc\r\n", b"mg k0 Zfoo\r\n", b"mg k0 t t\r\n",
            b"mg k0 T\r\n", b"mg k0 M\r\n", b"mg k0 b\r\n", b"mg !!!! b\r\n", b"md k0 X\r\n",
            b"ma k0 Mx\r\n", b"ma k0 Dx\r\n", b"ms k0 2 MX\r\nhi\r\n", b"ms k0 2 c c\r\nhi\r\n",
            b"ms k0 abc\r\nhi\r\n", b"ms k0 2 q\r\nhix\r\n", b"ms k0\r\n", b"me\r\n",
            b"mg k0 " + b"O" + b"1" * 40 + b"\r\n", b"md k0 O" + b"2" * 40 + b"\r\n",
            b"mg " + b"y" * 251 + b" v\r\n", b"mg k0 a b c d e f g h i j k l m n o p q r s\r\n",
            b"ms k0 2 a b c d e f g h i j k l m n o p q\r\nhi\r\n",
            b"set " + k + b" 0 0 1 noreply\r\nabc\r\n",
        ])]

    def command(self):
        r = self.r
        c = r.random()
        if c < 0.14:
            return self.classic_store()
        if c < 0.24:
            return self.classic_get()
        if c < 0.3:
            return self.classic_other()
        if c < 0.46:
            return self.mg()
        if c < 0.58:
            return self.ms()
        if c < 0.64:
            return self.md(stale_ok=False)
        if c < 0.76:
            return self.counter_cmd()
        if c < 0.86:
            return self.stale_cmd()
        if c < 0.89:
            return self.big_cmd()
        if c < 0.94:
            return self.misc_cmd()
        return self.error_cmd()


# ---- replies ----------------------------------------------------------------------------------


class Side:
    """One server: its connections and the cas uniques it handed out, by key."""

    def __init__(self, addr):
        self.conns = [Conn(addr), Conn(addr)]
        self.cas = {}      # key -> latest cas seen
        self.old_cas = {}  # key -> the one before

    def render(self, cmd):
        out = []
        for p in cmd:
            if isinstance(p, tuple):
                _, key, how = p
                if how == "never":
                    v = 18446744073709551000
                elif how == "old":
                    v = self.old_cas.get(key, 1)
                else:
                    v = self.cas.get(key, 1)
                out.append(str(v).encode())
            else:
                out.append(p)
        return b"".join(out)

    def saw_cas(self, key, cas):
        if key in self.cas and self.cas[key] != cas:
            self.old_cas[key] = self.cas[key]
        self.cas[key] = cas


def meta_key_of(words):
    """The key in a meta reply's k flag (decoded when followed by b)."""
    for i, w in enumerate(words):
        if w.startswith(b"k"):
            k = w[1:]
            if i + 1 < len(words) and words[i + 1] == b"b":
                return base64.b64decode(k).decode("latin1")
            return k.decode("latin1")
    return None


def split_unit(u):
    """(head words, data) of a reply unit."""
    i = u.find(b"\r\n")
    return u[:i].split(b" "), u[i + 2 :]


def record_cas(side, u):
    words, _ = split_unit(u)
    if words[0] == b"VALUE" and len(words) == 5:
        side.saw_cas(words[1].decode("latin1"), int(words[4]))
    elif words[0] in (b"HD", b"VA"):
        key = meta_key_of(words)
        for w in words[1:]:
            if w.startswith(b"c") and w[1:].isdigit() and key is not None:
                side.saw_cas(key, int(w[1:]))


def close_enough(a, b, slack):
    return a == b or (a.lstrip(b"-").isdigit() and b.lstrip(b"-").isdigit()
                      and abs(int(a) - int(b)) <= slack)


def same_word(a, b, meta):
    if a == b:
        return True
    if meta and a[:1] == b[:1] and a[:1] in (b"c", b"l") and a[1:].isdigit() and b[1:].isdigit():
        return True
    if meta and a[:1] == b[:1] == b"t":
        return close_enough(a[1:], b[1:], 2)
    for name in (b"la=", b"cas=", b"cls=", b"size="):
        if a.startswith(name) and b.startswith(name):
            return True
    if a.startswith(b"exp=") and b.startswith(b"exp="):
        return close_enough(a[4:], b[4:], 2)
    return False


def same_unit(a, b):
    if a == b:
        return True
    wa, da = split_unit(a)
    wb, db = split_unit(b)
    if da != db or len(wa) != len(wb) or wa[0] != wb[0]:
        return False
    if wa[0] == b"VERSION":
        return True
    if wa[0] == b"VALUE":
        return wa[:4] == wb[:4]
    meta = wa[0] in (b"HD", b"VA", b"EN", b"NF", b"NS", b"EX")
    if wa[0] == b"ME":
        return wa[1] == wb[1] and all(same_word(x, y, False) for x, y in zip(wa[2:], wb[2:]))
    return all(same_word(x, y, meta) for x, y in zip(wa, wb))


# ---- the run ------------------------------------------------------------------------------------


def run_seed(seed, args, ref, sut, stats):
    rnd = random.Random(seed)
    gen = Gen(rnd, args.item_max, time.time())
    ops = 0
    batch_no = 0
    for side in (ref, sut):
        for c in side.conns:
            c.send(b"flush_all\r\nmn\r\n")
            c.units_until_mn()
    while ops < args.ops:
        n = min(rnd.randint(1, 40), args.ops - ops)
        cmds = [gen.command() for _ in range(n)]
        ci = rnd.randrange(2)
        replies = []
        for side in (ref, sut):
            data = b"".join(side.render(c) for c in cmds) + b"mn\r\n"
            conn = side.conns[ci]
            # Sometimes in pieces, so commands arrive split at random places.
            cuts = sorted(rnd.sample(range(1, len(data)), min(3, len(data) - 1))) \
                if rnd.random() < 0.2 and len(data) > 4 else []
            at = 0
            for cut in cuts + [len(data)]:
                conn.send(data[at:cut])
                at = cut
            replies.append(conn.units_until_mn(1 + sum(c == [b"mn\r\n"] for c in cmds)))
        a, b = replies
        bad = len(a) != len(b) or any(not same_unit(x, y) for x, y in zip(a, b))
        if bad:
            report(seed, batch_no, cmds, ref, a, b)
            return False
        for side, units in ((ref, a), (sut, b)):
            for u in units:
                record_cas(side, u)
        ops += n
        batch_no += 1
        stats["units"] += len(a)
    stats["ops"] += ops
    stats["batches"] += batch_no
    return True


def show(b, limit=300):
    return repr(b if len(b) <= limit else b[:limit] + b"...")


def report(seed, batch_no, cmds, ref, a, b):
    print("kv_diff: MISMATCH seed=%d batch=%d (replay: --seeds %d)" % (seed, batch_no, seed))
    print("commands (as sent to the reference):")
    for c in cmds:
        print("  " + show(ref.render(c)))
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else b"<none>"
        y = b[i] if i < len(b) else b"<none>"
        mark = "  " if i < len(a) and i < len(b) and same_unit(x, y) else "!!"
        print("%s ref: %s" % (mark, show(x)))
        print("%s sut: %s" % (mark, show(y)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="memcached HOST:PORT")
    ap.add_argument("--sut", required=True, help="server under test HOST:PORT")
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, or FIRST-LAST")
    ap.add_argument("--ops", type=int, default=1500, help="commands per seed")
    ap.add_argument("--item-max", type=int, default=1 << 20, help="both servers' -I")
    args = ap.parse_args()
    if "-" in args.seeds:
        lo, hi = args.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    ref, sut = Side(args.ref), Side(args.sut)
    stats = {"ops": 0, "batches": 0, "units": 0}
    t0 = time.time()
    for seed in seeds:
        print("kv_diff: seed %d" % seed, flush=True)
        if not run_seed(seed, args, ref, sut, stats):
            return 1
    print("kv_diff: seeds=%s ops=%d batches=%d units=%d seconds=%.1f ok"
          % (",".join(map(str, seeds)), stats["ops"], stats["batches"], stats["units"],
             time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
