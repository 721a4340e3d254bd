/*
 * Internal: the partitioner object and the per-strategy pieces behind include/sn/partition.h.
 * Tests may include this header to reach the bare algorithms (sn__jump, sn__md5, ...).
 */
#ifndef SN_PARTITION_INTERNAL_H
#define SN_PARTITION_INTERNAL_H

#include <sn/partition.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* Inline XXH3: a call into libxxhash costs as much as hashing a 16-byte key. */
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

/* One ketama node; host and label are owned (malloc'd). */
struct sn__ketama_node {
    char *host;
    char *label;   /* what point names start with: the nutcracker name, "host" or "host:port" */
    uint16_t port; /* never 0: 0 is stored as 11211 */
    uint32_t weight;
    bool named; /* label is a nutcracker name, not host[:port] */
};

/* One point on the ketama ring: its 32-bit position and the node that owns it. */
struct sn__ketama_point {
    uint32_t value;
    uint32_t owner;
};

/*
 * The ketama ring. points[] is sorted by value, ties by owner index (libmemcached's qsort
 * comparator; nutcracker's layout orders ties by node label instead), and followed by a
 * sentinel points[npoints] = {UINT32_MAX, points[0].owner}.
 * bucket[b] is the index of the first point whose value is >= b << (32 - bits), and
 * bucket[1 << bits] is npoints, so a lookup reads one bucket entry and steps over the few
 * points after it instead of binary-searching the whole ring (~2 buckets per point).
 */
struct sn__ketama_ring {
    struct sn__ketama_point *points; /* npoints + 1 entries */
    uint32_t npoints;
    unsigned bits;
    uint32_t *bucket;
};

/* A key hash onto the ring (partition/ketama_hash.c). */
typedef uint32_t sn__ketama_hash_fn(const void *key, size_t len);

struct sn__ketama_hash_info {
    const char *name;
    sn__ketama_hash_fn *fn;
};

struct sn__ketama {
    struct sn__ketama_node *nodes;
    uint32_t cap;
    enum sn_ketama_key_hash key_hash;
    enum sn_ketama_ring layout;
    sn__ketama_hash_fn *key_fn;
    bool has_tag; /* nutcracker hash_tag set: tag[0], tag[1] */
    char tag[2];
    struct sn__ketama_ring ring;
};

struct sn__rendezvous {
    uint64_t *seeds; /* per node, independent of N so that N -> N+1 only adds a node */
    double *weights; /* NULL when all weights are equal: then no logarithm is needed */
};

/*
 * Range split points. pfx[i] is the first 8 bytes of split point i, big-endian, zero-padded
 * (for u64 split points, the value itself): comparing prefixes as integers gives the true
 * order whenever they differ, so the search touches the full keys only on a prefix tie.
 */
struct sn__range {
    bool is_u64;
    uint32_t nsplit;
    uint64_t *pfx;                 /* nsplit prefixes; for u64 split points, the values */
    struct sn_partition_key *keys; /* !is_u64: nsplit keys pointing into blob */
    uint8_t *blob;
};

struct sn__custom {
    sn_partition_fn *fn;
    sn_partition_u64_fn *fn_u64;
    void *arg;
};

/* A strategy's lookup on a byte key: hash and strategy in one function. */
typedef uint32_t sn__lookup_fn(const struct sn_partition *p, const void *key, size_t len);

struct sn_partition {
    enum sn_partition_kind kind;
    uint32_t n;
    /* When set, sn_partition calls only this (no switch): hash and jump, whose cost is small
     * enough for the dispatch to show. */
    sn__lookup_fn *lookup;
    uint32_t rr_next; /* round-robin cursor: per-caller state, see the header */
    union {
        uint32_t (*jump)(uint64_t key, uint32_t n); /* sn__jump_pick(), chosen at create */
        struct sn__ketama ketama;
        struct sn__rendezvous rdv;
        struct sn__range range;
        struct sn__custom custom;
    } u;
};

/* Formats a one-line error message into err (if err && errlen) and returns -EINVAL. */
int sn__perr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Key hashing shared by the hash-based strategies. */
static inline uint64_t sn__key_hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* sn__key_hash of a key over 16 bytes, out of line (partition.c). */
uint64_t sn__key_hash_long(const void *key, size_t len);

/*
 * sn__key_hash for the lookups (sn_partition's `lookup` functions), which are compiled with
 * __attribute__((flatten)) so that XXH3_64bits is inlined: left to itself the compiler calls
 * all of it, and for short keys that call, with its length dispatch, cost as much again as
 * the hash. Keys up to 16 bytes (the common case) take the inlined path; longer ones call
 * sn__key_hash_long, so the lookup does not carry the long paths' register needs.
 */
static inline __attribute__((always_inline)) uint64_t sn__key_hash_fast(const void *key, size_t len)
{
    if (__builtin_expect(len <= 16, 1))
        return XXH3_64bits(key, len);
    return sn__key_hash_long(key, len);
}

/* Maps a 64-bit hash onto [0, n) without division: floor(h * n / 2^64). */
static inline uint32_t sn__mulshift(uint64_t h, uint32_t n)
{
    return (uint32_t)(((unsigned __int128)h * n) >> 64);
}

/* The 4 bytes at p as a little-endian 32-bit value (MD5 words, ketama points). */
static inline uint32_t sn__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void sn__be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Lamping & Veach jump consistent hash: the bucket in [0, n) of a 64-bit key. n >= 1.
 * sn__jump picks the fastest form the CPU supports; every form returns exactly what the
 * paper's reference loop (sn__jump_ref) returns. jump.c and jump_steps.c explain why. */
uint32_t sn__jump(uint64_t key, uint32_t n);
uint32_t sn__jump_ref(uint64_t key, uint32_t n);
/* The fastest form this CPU runs for this n (what sn__jump calls); partitioners store it at
 * create, since n is fixed for their lifetime (ketama, not jump, adds nodes). */
uint32_t (*sn__jump_pick(uint32_t n))(uint64_t key, uint32_t n);
#if defined(__x86_64__) && defined(__GNUC__)
/* Call only where __builtin_cpu_supports says the CPU has fma+sse4.1, resp. avx512f, resp.
 * avx512f+avx512dq (the steps forms). */
uint32_t sn__jump_fma(uint64_t key, uint32_t n);
uint32_t sn__jump_avx512(uint64_t key, uint32_t n);
uint32_t sn__jump_steps16(uint64_t key, uint32_t n);
uint32_t sn__jump_steps32(uint64_t key, uint32_t n);
/* The fixed-step forms with the chain in registers (jump_regs.c): 8, 12, 14, 16, 24 steps.
 * Call only where the CPU has avx512f+avx512dq. */
uint32_t sn__jump_regs8(uint64_t key, uint32_t n);
uint32_t sn__jump_regs12(uint64_t key, uint32_t n);
uint32_t sn__jump_regs14(uint64_t key, uint32_t n);
uint32_t sn__jump_regs16(uint64_t key, uint32_t n);
uint32_t sn__jump_regs24(uint64_t key, uint32_t n);
/* The same on a byte key (hashed as sn__key_hash does), for sn_partition's `lookup`. */
uint32_t sn__jump_steps16_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_steps32_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_regs8_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_regs12_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_regs14_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_regs16_key(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__jump_regs24_key(const struct sn_partition *p, const void *key, size_t len);
/* sn__jump_regs8 and its byte-key form with the upper vector halves cleared on the way out
 * (jump_regs.c is built without vzeroupper): what sn__jump_pick takes on CPUs other than AMD's. */
uint32_t sn__jump_regs8_clean(uint64_t key, uint32_t n);
uint32_t sn__jump_regs8_key_clean(const struct sn_partition *p, const void *key, size_t len);
/* The LCG after i = 1..SN__JUMP_MAX_STEPS steps: mul[i-1] * key + add[i-1] (jump_steps.c). */
#define SN__JUMP_MAX_STEPS 32
extern const uint64_t sn__jump_lcg_mul[SN__JUMP_MAX_STEPS];
extern const uint64_t sn__jump_lcg_add[SN__JUMP_MAX_STEPS];
#endif

/* sn_partition_many for jump (jump_many.c): 8 keys at a time in AVX-512 lanes. */
void sn__jump_many(const struct sn_partition *p, const struct sn_partition_key *keys, size_t count,
                   uint32_t *out);

/* MD5 (RFC 1321) of len bytes into out. */
void sn__md5(const void *data, size_t len, uint8_t out[16]);
/* Multi-lane MD5 (md5_lanes.c): for count <= sn__md5_lanes_width() keys, each at most
 * MD5_LANES_MAX_KEY bytes, a_out[i] = digest bytes 0..3 of keys[i], little-endian (what
 * sn__ketama_md5_key returns). Width 16 with AVX-512, 8 with AVX2, else 1. */
#define MD5_LANES_MAX        16 /* the widest sn__md5_lanes_width() */
#define MD5_LANES_MAX_BLOCKS 4
#define MD5_LANES_MAX_KEY    (MD5_LANES_MAX_BLOCKS * 64 - 9)
unsigned sn__md5_lanes_width(void);
void sn__md5_lanes(const struct sn_partition_key *keys, unsigned count, uint32_t *a_out);

/* ketama.c */
int sn__ketama_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                    size_t errlen);
void sn__ketama_free(struct sn_partition *p);
uint32_t sn__ketama_lookup(const struct sn_partition *p, const void *key, size_t len);
/* sn_partition_many for ketama: MD5 keys in vector lanes where the CPU allows. */
void sn__ketama_lookup_many(const struct sn_partition *p, const struct sn_partition_key *keys,
                            size_t count, uint32_t *out);
/* The 32-bit key hash libmemcached uses with MD5: digest bytes 0..3 little-endian. */
uint32_t sn__ketama_md5_key(const void *key, size_t len);

/* ketama_ring.c: builds *r for nodes[0..n) in `layout`, hashing unweighted points with
 * key_fn. On failure *r is left empty and -ENOMEM or -EINVAL (the reason in err) returned. */
int sn__ketama_ring_build(struct sn__ketama_ring *r, const struct sn__ketama *k,
                          const struct sn__ketama_node *nodes, uint32_t n, char *err,
                          size_t errlen);
void sn__ketama_ring_free(struct sn__ketama_ring *r);
/* The owner of the first ring point >= h, wrapping to the first point. */
uint32_t sn__ketama_find(const struct sn__ketama_ring *r, uint32_t h);
/* Ring points of a node of `weight` among `live` nodes whose weights sum to total_weight. */
uint32_t sn__ketama_node_points(uint32_t weight, uint64_t total_weight, uint32_t live);

/* ketama_hash.c: the hash's name and function, or NULL for a value outside the enum. */
const struct sn__ketama_hash_info *sn__ketama_hash_info(enum sn_ketama_key_hash h);
/* The hash named name[0..len) (libmemcached and nutcracker spellings), or -1. */
int sn__ketama_hash_by_name(const char *name, size_t len);

/* rendezvous.c */
int sn__rendezvous_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                        size_t errlen);
void sn__rendezvous_free(struct sn_partition *p);
uint32_t sn__rendezvous_lookup(const struct sn_partition *p, uint64_t h);

/* range.c */
int sn__range_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                   size_t errlen);
void sn__range_free(struct sn_partition *p);
uint32_t sn__range_lookup(const struct sn_partition *p, const void *key, size_t len);
uint32_t sn__range_lookup_u64(const struct sn_partition *p, uint64_t key);

#endif
