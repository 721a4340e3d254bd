"""Drives a pylibmc client for tests/test_cluster.c, one command per stdin line.

    pylibmc_driver.py CONFIG_DIR SERVERS      (SERVERS: host:port,host:port,...)

The client is apps/kv/cluster/pylibmc_client.py's make_client() with the given servers, kept
for the whole run, so its view of dead and returning servers carries from command to command.

    set PREFIX N VALUE    sets PREFIX0 .. PREFIX<N-1>; prints "done STORED FAILED"
    probe KEY VALUE       sets one key; prints "ok" or "err MESSAGE"
    quit
"""
import sys

sys.path.insert(0, sys.argv[1])
import pylibmc_client  # noqa: E402


def main():
    client = pylibmc_client.make_client(sys.argv[2].split(","))
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            return 0
        if words[0] == "set":
            prefix, count, value = words[1], int(words[2]), words[3]
            stored = 0
            for i in range(count):
                try:
                    stored += bool(client.set(prefix + str(i), value))
                except Exception:  # server down or ejected: counted as not stored
                    pass
            print("done", stored, count - stored, flush=True)
        elif words[0] == "probe":
            try:
                print("ok" if client.set(words[1], words[2]) else "err not stored", flush=True)
            except Exception as e:
                print("err", type(e).__name__, flush=True)
        else:
            print("err unknown command", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
