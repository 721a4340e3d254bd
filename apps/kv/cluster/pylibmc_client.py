"""pylibmc (libmemcached) client settings for a pool of sn-kv instances: docs/CLUSTER.md.

tests/test_cluster.c drives a pylibmc client made by make_client() through a dead and a
returning member, so these settings are tested as they are.

libsn computes the same placement as BEHAVIORS with the partitioner spec
    ketama-unweighted:127.0.0.1:11211,127.0.0.2:11211,127.0.0.3:11211
("ketama": True is libmemcached's non-weighted ketama and keeps its default key hash,
one_at_a_time). With {"ketama_weighted": True} instead, the spec is ketama:... (MD5 keys).
"""
import pylibmc

SERVERS = ["127.0.0.1:11211", "127.0.0.2:11211", "127.0.0.3:11211"]

BEHAVIORS = {
    "ketama": True,         # consistent hashing (MEMCACHED_BEHAVIOR_KETAMA)
    "remove_failed": 1,     # auto-eject a server after one failure ...
    "failure_limit": 1,     # ... (pylibmc otherwise reports a limit of 5)
    "retry_timeout": 1,     # seconds before a failed server is tried again
    "dead_timeout": 4,      # seconds an ejected server stays out of the ring
    "connect_timeout": 200, # milliseconds
}


def make_client(servers=SERVERS, behaviors=BEHAVIORS):
    """A pylibmc client for the pool."""
    return pylibmc.Client(servers, behaviors=behaviors)
