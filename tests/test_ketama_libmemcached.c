/*
 * libsn's ketama against libmemcached itself (Debian libmemcached-dev, linked into this test):
 * for every ring layout libmemcached has (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED and
 * MEMCACHED_BEHAVIOR_KETAMA) and every key hash it offers, several server lists, and keys of
 * every length up to memcached's 250 bytes (printable, and arbitrary bytes), the server
 * memcached_generate_hash picks must be the one sn_partition picks. Also each key hash alone
 * against libhashkit's function.
 *
 * SN_KETAMA_KEYS=N sets the keys per (layout, hash, list); the default keeps `make test` quick.
 * The 100,000-key run recorded in docs/CLUSTER.md is
 *   SN_KETAMA_KEYS=100000 build/tests/test_ketama_libmemcached --verbose
 * which prints one "ketama-compat:" line per layout and hash.
 */
#include <criterion/criterion.h>
#include <libhashkit-1.0/hashkit.h>
#include <libmemcached/memcached.h>
#include <sn.h>

#include "partition/partition_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_KEYS 20000
#define MAX_SERVERS  32

struct server {
    const char *host;
    unsigned port;
    unsigned weight;
};

struct server_list {
    const char *name;
    struct server srv[MAX_SERVERS];
    unsigned n;
};

static char long_host[201];
static char equal25_hosts[25][16];

/* The lists every layout and hash is checked on. Mixed ports on purpose: libmemcached names
 * points "host-i" on port 11211 and "host:port-i" on any other port. */
static void make_lists(struct server_list *l, unsigned *count)
{
    static const struct server eight[] = {
        {"10.0.1.1", 11211, 1},
        {"10.0.1.2", 11211, 1},
        {"10.0.1.3", 11212, 1},
        {"cache-a", 11211, 1},
        {"cache-b.example.com", 22122, 1},
        {"192.168.7.10", 11211, 1},
        {"192.168.7.11", 11213, 1},
        {"localhost", 11211, 1},
    };
    static const unsigned weights[] = {1, 2, 3, 1, 5, 1, 2, 4};
    unsigned n = 0;
    l[n] = (struct server_list){"eight", {{0}}, 8};
    memcpy(l[n++].srv, eight, sizeof(eight));
    l[n] = (struct server_list){
        "three-loopback",
        {{"127.0.0.1", 11211, 1}, {"127.0.0.2", 11211, 1}, {"127.0.0.3", 11211, 1}},
        3};
    n++;
    l[n] = (struct server_list){"equal25", {{0}}, 25};
    for (unsigned i = 0; i < 25; i++) {
        snprintf(equal25_hosts[i], sizeof(equal25_hosts[i]), "10.2.0.%u", i + 1);
        l[n].srv[i] = (struct server){equal25_hosts[i], 11211, 1};
    }
    n++;
    memset(long_host, 'h', sizeof(long_host) - 1);
    l[n] = (struct server_list){"long-host", {{long_host, 11211, 1}, {"short", 4000, 1}}, 2};
    n++;
    /* Weights only where the layout has them (set_weights_for below). */
    l[n] = (struct server_list){"eight-weighted", {{0}}, 8};
    memcpy(l[n].srv, eight, sizeof(eight));
    for (unsigned i = 0; i < 8; i++)
        l[n].srv[i].weight = weights[i];
    n++;
    *count = n;
}

/* libmemcached's key hashes, as pylibmc names them (hsieh is missing from Debian's build:
 * libhashkit_has_algorithm says so, and libmemcached refuses it). */
static const struct {
    memcached_hash_t lm;
    enum sn_ketama_key_hash sn;
    uint32_t (*alone)(const char *key, size_t len);
} hashes[] = {
    {MEMCACHED_HASH_MD5, SN_KETAMA_KEY_MD5, libhashkit_md5},
    {MEMCACHED_HASH_DEFAULT, SN_KETAMA_KEY_ONE_AT_A_TIME, libhashkit_one_at_a_time},
    {MEMCACHED_HASH_CRC, SN_KETAMA_KEY_CRC32, libhashkit_crc32},
    {MEMCACHED_HASH_FNV1_64, SN_KETAMA_KEY_FNV1_64, libhashkit_fnv1_64},
    {MEMCACHED_HASH_FNV1A_64, SN_KETAMA_KEY_FNV1A_64, libhashkit_fnv1a_64},
    {MEMCACHED_HASH_FNV1_32, SN_KETAMA_KEY_FNV1_32, libhashkit_fnv1_32},
    {MEMCACHED_HASH_FNV1A_32, SN_KETAMA_KEY_FNV1A_32, libhashkit_fnv1a_32},
    {MEMCACHED_HASH_MURMUR, SN_KETAMA_KEY_MURMUR, libhashkit_murmur},
    {MEMCACHED_HASH_MURMUR3, SN_KETAMA_KEY_MURMUR3, libhashkit_murmur3},
    {MEMCACHED_HASH_JENKINS, SN_KETAMA_KEY_JENKINS, libhashkit_jenkins},
};
#define NHASHES (sizeof(hashes) / sizeof(hashes[0]))

static unsigned key_count(void)
{
    const char *e = getenv("SN_KETAMA_KEYS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 ? (unsigned)v : DEFAULT_KEYS;
}

static uint64_t rng_next(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

/* Key i of a fixed sequence: lengths 1..250, every tenth one past an MD5 block, odd ones of
 * arbitrary bytes (high bit set included), even ones printable as memcached keys are. */
static size_t make_key(unsigned i, char *out)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ i;
    rng_next(&x);
    size_t len = rng_next(&x) % 10 == 0 ? 57 + rng_next(&x) % 194 : 1 + rng_next(&x) % 40;
    for (size_t j = 0; j < len; j++) {
        uint64_t r = rng_next(&x);
        out[j] = (char)(i & 1 ? r : 33 + r % 94);
    }
    return len;
}

static memcached_st *lm_create(enum sn_ketama_ring ring, memcached_hash_t hash,
                               const struct server_list *l)
{
    memcached_st *m = memcached_create(NULL);
    cr_assert_not_null(m);
    memcached_behavior_t b = ring == SN_KETAMA_RING_WEIGHTED ? MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
                                                             : MEMCACHED_BEHAVIOR_KETAMA;
    cr_assert_eq(memcached_behavior_set(m, b, 1), MEMCACHED_SUCCESS);
    cr_assert_eq(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_HASH, hash), MEMCACHED_SUCCESS);
    for (unsigned i = 0; i < l->n; i++)
        cr_assert_eq(memcached_server_add_with_weight(m, l->srv[i].host, (in_port_t)l->srv[i].port,
                                                      l->srv[i].weight),
                     MEMCACHED_SUCCESS, "%s", l->srv[i].host);
    return m;
}

static struct sn_partition *sn_create(enum sn_ketama_ring ring, enum sn_ketama_key_hash hash,
                                      const struct server_list *l)
{
    struct sn_partition_node nodes[MAX_SERVERS];
    for (unsigned i = 0; i < l->n; i++)
        nodes[i] =
            (struct sn_partition_node){l->srv[i].host, (uint16_t)l->srv[i].port, l->srv[i].weight};
    struct sn_partition_config c = {.kind = SN_PARTITION_KETAMA,
                                    .n = l->n,
                                    .nodes = nodes,
                                    .ketama_key_hash = hash,
                                    .ketama_ring = ring};
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    return p;
}

/* Mismatches between libmemcached and libsn over `keys` keys. */
static unsigned compare(memcached_st *m, struct sn_partition *p, unsigned keys, const char *what)
{
    unsigned bad = 0;
    char key[256];
    for (unsigned i = 0; i < keys; i++) {
        size_t len = make_key(i, key);
        uint32_t want = memcached_generate_hash(m, key, len), got = sn_partition(p, key, len);
        if (want != got && bad++ < 3)
            cr_log_error("%s: key %u (len %zu): libmemcached %u, libsn %u", what, i, len, want,
                         got);
    }
    return bad;
}

static void check_layout(enum sn_ketama_ring ring, const char *layout)
{
    struct server_list lists[8];
    unsigned nlists, keys = key_count();
    make_lists(lists, &nlists);
    for (size_t h = 0; h < NHASHES; h++) {
        unsigned total = 0, checked = 0, used = 0;
        for (unsigned l = 0; l < nlists; l++) {
            /* The unweighted layout has no weights (libmemcached switches layout on one). */
            if (ring == SN_KETAMA_RING_UNWEIGHTED && strcmp(lists[l].name, "eight-weighted") == 0)
                continue;
            memcached_st *m = lm_create(ring, hashes[h].lm, &lists[l]);
            struct sn_partition *p = sn_create(ring, hashes[h].sn, &lists[l]);
            char what[96];
            snprintf(what, sizeof(what), "%s %s %s", layout,
                     sn__ketama_hash_info(hashes[h].sn)->name, lists[l].name);
            total += compare(m, p, keys, what);
            checked += keys;
            used++;
            sn_partition_destroy(p);
            memcached_free(m);
        }
        cr_log_info("ketama-compat: peer=libmemcached-%s layout=%s hash=%s lists=%u keys=%u "
                    "mismatches=%u",
                    memcached_lib_version(), layout, sn__ketama_hash_info(hashes[h].sn)->name, used,
                    checked, total);
        cr_expect_eq(total, 0, "%s %s: %u of %u keys differ from libmemcached", layout,
                     sn__ketama_hash_info(hashes[h].sn)->name, total, checked);
    }
}

Test(ketama_libmemcached, key_hashes_alone)
{
    char key[256];
    unsigned keys = key_count();
    for (size_t h = 0; h < NHASHES; h++) {
        sn__ketama_hash_fn *fn = sn__ketama_hash_info(hashes[h].sn)->fn;
        unsigned bad = 0;
        for (unsigned i = 0; i < keys; i++) {
            /* Every alignment: libhashkit's jenkins and murmur read words where aligned. */
            size_t len = make_key(i, key + 1 + i % 3);
            const char *k = key + 1 + i % 3;
            bad += fn(k, len) != hashes[h].alone(k, len);
        }
        bad += fn("", 0) != hashes[h].alone("", 0);
        cr_expect_eq(bad, 0, "%s: %u keys hash differently from libhashkit",
                     sn__ketama_hash_info(hashes[h].sn)->name, bad);
    }
}

Test(ketama_libmemcached, weighted_layout)
{
    check_layout(SN_KETAMA_RING_WEIGHTED, "weighted");
}

Test(ketama_libmemcached, unweighted_layout)
{
    check_layout(SN_KETAMA_RING_UNWEIGHTED, "unweighted");
}

/* libmemcached's MEMCACHED_BEHAVIOR_KETAMA keeps the default key hash (one_at_a_time), not
 * MD5 as its documentation says; ketama-unweighted's default follows the library. */
Test(ketama_libmemcached, plain_ketama_behaviour_defaults)
{
    struct server_list lists[8];
    unsigned nlists;
    make_lists(lists, &nlists);
    memcached_st *m = memcached_create(NULL);
    cr_assert_eq(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA, 1), MEMCACHED_SUCCESS);
    for (unsigned i = 0; i < lists[0].n; i++)
        memcached_server_add(m, lists[0].srv[i].host, (in_port_t)lists[0].srv[i].port);
    char spec[512] = "ketama-unweighted:";
    for (unsigned i = 0; i < lists[0].n; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%s%s:%u", i ? "," : "",
                 lists[0].srv[i].host, lists[0].srv[i].port);
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(spec, 0, err, sizeof(err), &p), 0, "%s", err);
    cr_expect_eq(compare(m, p, key_count(), spec), 0);
    sn_partition_destroy(p);
    memcached_free(m);
}

/* A weight above 1 makes libmemcached's non-weighted ketama weighted: what libsn refuses in
 * the unweighted layout is exactly its weighted layout. */
Test(ketama_libmemcached, weight_switches_libmemcached_to_weighted)
{
    struct server_list lists[8];
    unsigned nlists;
    make_lists(lists, &nlists);
    const struct server_list *w = &lists[nlists - 1];
    memcached_st *m = lm_create(SN_KETAMA_RING_UNWEIGHTED, MEMCACHED_HASH_MD5, w);
    struct sn_partition *p = sn_create(SN_KETAMA_RING_WEIGHTED, SN_KETAMA_KEY_MD5, w);
    cr_expect_eq(compare(m, p, key_count() / 4, "unweighted+weights"), 0);
    sn_partition_destroy(p);
    memcached_free(m);

    struct sn_partition_node nodes[2] = {{"a", 0, 1}, {"b", 0, 2}};
    struct sn_partition_config c = {.kind = SN_PARTITION_KETAMA,
                                    .n = 2,
                                    .nodes = nodes,
                                    .ketama_ring = SN_KETAMA_RING_UNWEIGHTED};
    char err[256];
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    cr_expect(strstr(err, "switches to the weighted layout") != NULL, "%s", err);
}

/* Removing a node gives what libmemcached gives for the shorter list, in both layouts. */
Test(ketama_libmemcached, remove_and_add_follow_libmemcached)
{
    struct server_list lists[8];
    unsigned nlists;
    make_lists(lists, &nlists);
    struct server_list shorter = lists[0];
    memmove(&shorter.srv[2], &shorter.srv[3], (shorter.n - 3) * sizeof(shorter.srv[0]));
    shorter.n--;
    enum sn_ketama_ring rings[] = {SN_KETAMA_RING_WEIGHTED, SN_KETAMA_RING_UNWEIGHTED};
    for (int r = 0; r < 2; r++) {
        struct sn_partition *p = sn_create(rings[r], SN_KETAMA_KEY_FNV1A_32, &lists[0]);
        cr_assert_eq(
            sn_partition_ketama_remove(p, lists[0].srv[2].host, (uint16_t)lists[0].srv[2].port), 0);
        memcached_st *m = lm_create(rings[r], MEMCACHED_HASH_FNV1A_32, &shorter);
        cr_expect_eq(compare(m, p, key_count() / 4, "after remove"), 0);
        memcached_free(m);
        cr_assert_eq(
            sn_partition_ketama_add(p, lists[0].srv[2].host, (uint16_t)lists[0].srv[2].port, 1),
            (int)shorter.n);
        /* Now in libmemcached's order: the re-added node last. */
        shorter.srv[shorter.n] = lists[0].srv[2];
        shorter.n++;
        m = lm_create(rings[r], MEMCACHED_HASH_FNV1A_32, &shorter);
        cr_expect_eq(compare(m, p, key_count() / 4, "after add"), 0);
        memcached_free(m);
        shorter.n--;
        sn_partition_destroy(p);
    }
}
