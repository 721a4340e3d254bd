/*
 * Partitioners: pure functions from a key to the partition (core, shard, server) that owns it.
 *
 * One interface for every strategy: build a partitioner from a config struct
 * (sn_partition_create) or from a command-line string (sn_partition_from_string), map keys
 * with sn_partition() / sn_partition_u64() (or many at once with sn_partition_many()), free
 * it with sn_partition_destroy().
 *
 * Guarantees, for every strategy: the result is always < sn_partition_count(p); the same
 * key on a partitioner built from the same config gives the same result in every process
 * and on every run (no random seeds; round-robin is deterministic in call order); N = 1
 * works; the empty key (len 0, key may be NULL) works.
 *
 * Byte keys and u64 keys are one key space: sn_partition_u64(p, k) gives the same result
 * as sn_partition(p, b, 8) where b holds k in big-endian byte order (big-endian so that
 * memcmp order on the bytes equals numeric order, which range partitioners rely on).
 *
 * Strategies and what they promise:
 *
 *  SN_PARTITION_HASH        XXH3 64-bit hash of the key mapped to [0, N) by multiply-shift,
 *                           ((unsigned __int128)h * N) >> 64: no division and no modulo bias.
 *                           Growing N to N+1 moves about half of all keys (multiply-shift;
 *                           `h % N` would move N/(N+1) of them), so use it only when N is fixed.
 *  SN_PARTITION_JUMP        Lamping & Veach jump consistent hash ("A Fast, Minimal Memory,
 *                           Consistent Hash Algorithm", 2014) over the key's XXH3 hash. N -> N+1
 *                           moves ~1/(N+1) of the keys, all to the new partition. Partitions
 *                           can only be added or removed at the end.
 *  SN_PARTITION_KETAMA      Consistent-hash ring with 32-bit points that picks the same server
 *                           as the memcached clients and proxies people run, for the same
 *                           server list (same order, hosts, ports, weights, names):
 *                           libmemcached's weighted ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
 *                           the default), libmemcached's non-weighted ketama
 *                           (MEMCACHED_BEHAVIOR_KETAMA, pylibmc's `ketama` behaviour) and
 *                           nutcracker's (twemproxy's) `distribution: ketama`, each with every
 *                           key hash those programs offer (enum sn_ketama_ring, enum
 *                           sn_ketama_key_hash; docs/CLUSTER.md says which was verified how).
 *                           Nodes can be added and removed; N -> N+1 moves ~1/(N+1) of the keys,
 *                           a little more at the N where the weighted layouts' float arithmetic
 *                           changes every node's point count (e.g. 25 equal nodes get 156 points
 *                           each instead of 160). MD5 key hashing costs ~100 ns per key one at a
 *                           time, ~25 ns per key through sn_partition_many; the other key hashes
 *                           are byte loops whose cost grows with the key (bench/bench_ketama,
 *                           docs/PERFORMANCE.md), each faster than libmemcached's lookup.
 *  SN_PARTITION_RENDEZVOUS  Highest random weight: each key scores every node and takes the
 *                           best; optional weights (logarithmic method, score = -w / ln(u)).
 *                           N -> N+1 moves ~1/(N+1) of the keys. Costs O(N) per key.
 *  SN_PARTITION_RANGE       N-1 sorted split points (u64 or byte strings); binary search.
 *  SN_PARTITION_ROUND_ROBIN Ignores the key; returns start, start+1, ... modulo N.
 *  SN_PARTITION_CUSTOM      Calls a user callback with user data.
 *
 * Threads: a partitioner is immutable after creation except for the round-robin cursor and
 * sn_partition_ketama_add/remove. So any number of threads may call sn_partition() on one
 * partitioner concurrently, EXCEPT: a round-robin partitioner is per-caller state (create one
 * per thread or core; there is deliberately no shared atomic counter), and ketama add/remove
 * must not run concurrently with anything else on the same partitioner. A custom partitioner
 * is as thread-safe as its callback.
 */
#ifndef SN_PARTITION_H
#define SN_PARTITION_H

#include <sn/common.h>

SN_BEGIN_DECLS

struct sn_partition;

enum sn_partition_kind {
    SN_PARTITION_HASH = 1,
    SN_PARTITION_JUMP,
    SN_PARTITION_KETAMA,
    SN_PARTITION_RENDEZVOUS,
    SN_PARTITION_RANGE,
    SN_PARTITION_ROUND_ROBIN,
    SN_PARTITION_CUSTOM,
};

/* Largest N any partitioner accepts; ketama accepts at most SN_PARTITION_KETAMA_MAX_NODES. */
#define SN_PARTITION_MAX_N            (1u << 24)
#define SN_PARTITION_KETAMA_MAX_NODES 65536u
/* Longest ketama host name, excluding the terminating NUL. */
#define SN_PARTITION_KETAMA_MAX_HOST 255u
/* memcached's default port: a node with this port (or port 0) hashes as "host-i", not
 * "host:port-i", exactly as libmemcached does. */
#define SN_PARTITION_KETAMA_DEFAULT_PORT 11211u

/*
 * How ketama hashes keys onto the ring. The names are those of libmemcached (pylibmc's `hash`
 * behaviour) and nutcracker (its `hash:` setting); sn_partition_from_string accepts them.
 * Each reproduces that program's function exactly, quirks included (partition/ketama_hash.c).
 */
enum sn_ketama_key_hash {
    /* MD5, first 4 digest bytes little-endian: libmemcached's and nutcracker's "md5". The
     * default of the C config (and of the weighted layout, as in libmemcached). */
    SN_KETAMA_KEY_MD5 = 0,
    /* Upper 32 bits of XXH3-64: several times faster, NOT compatible with memcached clients.
     * For partitioning between local cores where no foreign client must agree. */
    SN_KETAMA_KEY_XXH3 = 1,
    /* Jenkins' one-at-a-time: "one_at_a_time" (nutcracker), "default" (libmemcached, pylibmc;
     * what MEMCACHED_BEHAVIOR_KETAMA leaves in place). */
    SN_KETAMA_KEY_ONE_AT_A_TIME,
    /* "crc32" (nutcracker) = "crc" (libmemcached): CRC-32 bits 16..30, so only 0..32767. */
    SN_KETAMA_KEY_CRC32,
    /* "crc32a" (nutcracker only): the full standard CRC-32. */
    SN_KETAMA_KEY_CRC32A,
    /* "crc16" (nutcracker only): nutcracker 0.5.0's, CRC-16/XMODEM steps on a register that
     * is never cut to 16 bits (so 32-bit values). */
    SN_KETAMA_KEY_CRC16,
    /* FNV-1 / FNV-1a, 64-bit constants cut to 32 bits (as both programs do) or 32-bit. */
    SN_KETAMA_KEY_FNV1_64,
    SN_KETAMA_KEY_FNV1A_64, /* nutcracker's default */
    SN_KETAMA_KEY_FNV1_32,
    SN_KETAMA_KEY_FNV1A_32,
    /* "hsieh": nutcracker's SuperFastHash (libmemcached has it only when built with it). */
    SN_KETAMA_KEY_HSIEH,
    /* "murmur": MurmurHash2 seeded with 0xdeadbeef * length (both programs). */
    SN_KETAMA_KEY_MURMUR,
    /* "murmur3": MurmurHash3 x86_32, same seed (libmemcached 1.1 only). */
    SN_KETAMA_KEY_MURMUR3,
    /* "jenkins": lookup3 hashlittle, initval 13 (both programs). */
    SN_KETAMA_KEY_JENKINS,
};

/* How the ring's points are laid out: whose ketama the partitioner reproduces. */
enum sn_ketama_ring {
    /* libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (pylibmc `ketama_weighted`): each node
     * gets ~160 * N * weight / total points (float arithmetic, as libmemcached), 4 per MD5 of
     * "host-k" (port 11211) or "host:port-k". The default. */
    SN_KETAMA_RING_WEIGHTED = 0,
    /* libmemcached's MEMCACHED_BEHAVIOR_KETAMA / distribution "consistent" (pylibmc `ketama`):
     * 100 points per node, one per name "host-k" / "host:port-k", each hashed with the KEY
     * hash. No weights: libmemcached switches to the weighted layout when a weight > 1 is
     * given, so such a config is refused here. */
    SN_KETAMA_RING_UNWEIGHTED = 1,
    /* nutcracker's (twemproxy's) `distribution: ketama`: the weighted layout, but points are
     * named after the server's name when it has one (ketama_names; "host:port:weight name"
     * in its YAML),
     * else "host" (port 11211) or "host:port"; equal points are ordered by server name (as
     * nutcracker sorts its servers). Point names must fit nutcracker's 85-byte buffer. An
     * optional hash tag (`hash_tag:`) hashes only the part of a key between its two
     * characters. Its default key hash is fnv1a_64: set ketama_key_hash (the C config's
     * default is MD5; the string form defaults to fnv1a_64 as nutcracker does). */
    SN_KETAMA_RING_NUTCRACKER = 2,
};

/* A ketama node: host name or address, port (0 means 11211), weight (0 means 1). */
struct sn_partition_node {
    const char *host;
    uint16_t port;
    uint32_t weight;
};

/* A byte-string split point for range partitioners. */
struct sn_partition_key {
    const void *data;
    size_t len;
};

/*
 * Custom callbacks. `fn` gets the key bytes and N and should return a value < n; a value
 * >= n is folded into range with `% n` so the "< N" guarantee holds even for a buggy callback.
 * `fn_u64`, if set, serves sn_partition_u64(); if NULL, sn_partition_u64() calls `fn` with the
 * key's 8 big-endian bytes.
 */
typedef uint32_t sn_partition_fn(void *arg, const void *key, size_t len, uint32_t n);
typedef uint32_t sn_partition_u64_fn(void *arg, uint64_t key, uint32_t n);

/*
 * What to build. Zero-initialise, then set `kind`, `n` and the fields of that strategy; the
 * fields of other strategies must stay zero/NULL. Every array is copied: the caller keeps
 * ownership and may free it after sn_partition_create() returns.
 */
struct sn_partition_config {
    enum sn_partition_kind kind;
    /* Number of partitions, 1 .. SN_PARTITION_MAX_N. For range, n = number of split points
     * plus one. For ketama with `nodes`, the number of nodes. */
    uint32_t n;

    /* ketama: n nodes in this order (result i is nodes[i]). NULL: n nodes named "node0",
     * "node1", ... on port 11211, weight 1. */
    const struct sn_partition_node *nodes;
    enum sn_ketama_key_hash ketama_key_hash;
    enum sn_ketama_ring ketama_ring;
    /* ketama, nutcracker layout only: NULL, or n server names (nutcracker's
     * "host:port:weight name"), each NULL for a server without one. A name replaces
     * host[:port] in the node's point names; names must be unique. */
    const char *const *ketama_names;
    /* ketama, nutcracker layout only: nutcracker's `hash_tag`, two characters such as "{}",
     * or NULL. A key with a non-empty part between the first tag[0] and the next tag[1] is
     * hashed by that part alone. */
    const char *ketama_hash_tag;

    /* rendezvous: NULL for equal weights, else n finite weights > 0. */
    const double *weights;

    /* range: exactly one of these, with n-1 strictly increasing split points. Partition 0
     * holds keys below split[0], partition i holds split[i-1] <= key < split[i], partition n-1
     * holds keys >= split[n-2]. Byte strings compare like memcmp over the common length, and
     * a proper prefix sorts before the longer string ("" < "a" < "ab" < "b"). u64 split points
     * compare numerically, which for byte keys means against their 8-byte big-endian form. */
    const uint64_t *split_u64;
    const struct sn_partition_key *split_keys;

    /* round-robin: first partition returned (taken modulo n). Give each caller a different
     * start (e.g. its core id) so callers do not all begin on partition 0. */
    uint32_t rr_start;

    /* custom */
    sn_partition_fn *fn;
    sn_partition_u64_fn *fn_u64;
    void *arg;
};

/*
 * Builds a partitioner. On success stores it in *out and returns 0. On failure stores NULL,
 * returns -EINVAL (bad config: the reason, one line, goes to `err` if err != NULL and
 * errlen > 0, always NUL-terminated and truncated to errlen) or -ENOMEM. Any thread.
 * The caller owns the partitioner and frees it with sn_partition_destroy().
 */
SN_API int sn_partition_create(const struct sn_partition_config *cfg, char *err, size_t errlen,
                               struct sn_partition **out);

/*
 * Builds a partitioner from a string, for command lines. `n` is the number of partitions;
 * 0 means "take it from the spec", which only specs that list their partitions can do.
 *
 *   hash | jump | round-robin (or rr)              needs n
 *   rendezvous (or hrw)                            needs n, equal weights
 *   rendezvous:W0,W1,...                           weights; N = count
 *   ketama:N                                       N nodes "node0".."node(N-1)"
 *   ketama:host[:port[:weight]],...                libmemcached server-list syntax
 *                                                  ("[v6addr]:port" for IPv6); N = count
 *   ketama-HASH:...                                as ketama, key hash HASH (below)
 *   ketama-unweighted[-HASH]:...                   SN_KETAMA_RING_UNWEIGHTED; HASH defaults
 *                                                  to one_at_a_time, as in libmemcached
 *   nutcracker[-HASH][/TAG]:...                    SN_KETAMA_RING_NUTCRACKER (also spelled
 *                                                  twemproxy); HASH defaults to fnv1a_64 as in
 *                                                  nutcracker; TAG is a 2-character hash_tag.
 *                                                  Servers as in nutcracker's YAML:
 *                                                  host:port:weight [name] (port and weight
 *                                                  may be left out), e.g.
 *                                                  "nutcracker/{}:10.0.0.1:11211:1 alpha,..."
 *   HASH: md5 one_at_a_time (or default) crc32 (or crc) crc32a crc16 fnv1_64 fnv1a_64
 *         fnv1_32 fnv1a_32 hsieh murmur murmur3 jenkins xxh3
 *   range:10,20,30                                 u64 split points (decimal or 0x hex); N = 4
 *   range:str:b,m,t                                byte-string split points (no escapes)
 *   range:hex:0a,ff01                              byte-string split points as hex bytes
 *
 * When both n and the spec give N they must agree. Returns 0, -EINVAL with a message in
 * `err` (as sn_partition_create), or -ENOMEM. Custom partitioners need a callback and so
 * cannot be made from a string. Any thread.
 */
SN_API int sn_partition_from_string(const char *spec, uint32_t n, char *err, size_t errlen,
                                    struct sn_partition **out);

/* Frees a partitioner; NULL is a no-op. No other call may be using it. Any thread. */
SN_API void sn_partition_destroy(struct sn_partition *p);

/*
 * The partition that owns `key` (len bytes; key may be NULL when len is 0): a value < N.
 * Thread rules are at the top of this header (round-robin advances its cursor).
 */
SN_API uint32_t sn_partition(struct sn_partition *p, const void *key, size_t len);

/* The partition that owns the u64 `key`; equal to sn_partition() on its 8 big-endian bytes. */
SN_API uint32_t sn_partition_u64(struct sn_partition *p, uint64_t key);

/*
 * Maps `count` keys at once: out[i] = sn_partition(p, keys[i].data, keys[i].len) for every
 * i < count, in order (a round-robin partitioner advances its cursor count times). Same
 * thread rules as sn_partition(). `out` has room for count results; count 0 does nothing.
 *
 * Worth it for ketama with MD5 keys: one key's MD5 is a serial chain of 64 steps (~75 ns
 * here however it is written), but with AVX-512 (AVX2) 16 (8) keys of up to 247 bytes are
 * hashed side by side in vector lanes, several times faster per key; longer keys are hashed
 * one at a time. Jump runs 8 keys side by side with AVX-512 (about twice as fast per key).
 * The other strategies map key by key. Results never depend on the CPU or the batch size.
 */
SN_API void sn_partition_many(struct sn_partition *p, const struct sn_partition_key *keys,
                              size_t count, uint32_t *out);

/* Number of partitions N (changes only through ketama add/remove). Any thread. */
SN_API uint32_t sn_partition_count(const struct sn_partition *p);

/* The strategy `p` was built with (SN_PARTITION_HASH ... SN_PARTITION_CUSTOM). Any thread. */
SN_API enum sn_partition_kind sn_partition_kind(const struct sn_partition *p);

/* "hash", "jump", "ketama", "rendezvous", "range", "round-robin", "custom", or "unknown". */
SN_API const char *sn_partition_kind_name(enum sn_partition_kind kind);

/*
 * Ketama only: adds a node at the end (its index is the old N) and rebuilds the ring. Weights
 * are relative, so adding a node changes the point counts of the others exactly as in
 * libmemcached and nutcracker. The node has no nutcracker name (its points are named after
 * host[:port]). Returns the new node's index, -EEXIST if host:port (nutcracker: its point
 * name) is already a node's, -EINVAL (not ketama, bad host, too many nodes, a weight above 1
 * in the unweighted layout, point names too long for nutcracker) or -ENOMEM; on failure the
 * partitioner is unchanged. Not concurrently with any other call on p.
 */
SN_API int sn_partition_ketama_add(struct sn_partition *p, const char *host, uint16_t port,
                                   uint32_t weight);

/*
 * Ketama only: removes the node host:port and rebuilds the ring; nodes after it move down by
 * one index (as in libmemcached's server list). Only keys of the removed node move. Returns 0,
 * -ENOENT, -EINVAL (not ketama, or it is the last node) or -ENOMEM (unchanged).
 * Not concurrently with any other call on p.
 */
SN_API int sn_partition_ketama_remove(struct sn_partition *p, const char *host, uint16_t port);

/* Ketama only: index of node host:port, or -ENOENT (-EINVAL if not ketama). Any thread. */
SN_API int sn_partition_ketama_find(const struct sn_partition *p, const char *host, uint16_t port);

/* Ketama only: host of node i (valid until the next add/remove/destroy), or NULL. */
SN_API const char *sn_partition_ketama_host(const struct sn_partition *p, uint32_t i);

SN_END_DECLS

#endif
