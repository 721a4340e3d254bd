/*
 * Ketama: compatibility with libmemcached, checked against tests/ketama/table.inc, which
 * tests/ketama/gen_ketama_table.c produced with libmemcached itself (the suite never needs
 * libmemcached at run time); plus MD5, add/remove and node lookup.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "partition/partition_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ketama/table.inc"

#define NUM_SETS (sizeof(ketama_sets) / sizeof(ketama_sets[0]))

static int set_index(const char *name)
{
    for (size_t i = 0; i < NUM_SETS; i++)
        if (strcmp(ketama_sets[i].name, name) == 0)
            return (int)i;
    cr_assert_fail("no set %s in table.inc", name);
    return -1;
}

static struct sn_partition *make_set(int s)
{
    struct sn_partition_node nodes[64];
    cr_assert_leq(ketama_sets[s].n, 64);
    for (unsigned i = 0; i < ketama_sets[s].n; i++)
        nodes[i] = (struct sn_partition_node){ketama_sets[s].srv[i].host,
                                              (uint16_t)ketama_sets[s].srv[i].port,
                                              ketama_sets[s].srv[i].weight};
    struct sn_partition_config c = {
        .kind = SN_PARTITION_KETAMA, .n = ketama_sets[s].n, .nodes = nodes};
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    return p;
}

/* Checks p against set s, comparing server names (so index shifts after add/remove show up
 * as what they are). */
static void expect_matches(struct sn_partition *p, int s, const char *what)
{
    int bad = 0;
    for (int k = 0; k < KETAMA_NKEYS; k++) {
        uint32_t got = sn_partition(p, ketama_keys[k].key, ketama_keys[k].len);
        const char *want = ketama_sets[s].srv[ketama_sets[s].want[k]].host;
        const char *host = sn_partition_ketama_host(p, got);
        if (!host || strcmp(host, want) != 0) {
            if (bad++ < 5)
                cr_log_error("%s: key %d (\"%s\") -> %s, libmemcached says %s", what, k,
                             ketama_keys[k].key, host ? host : "(null)", want);
        }
    }
    cr_expect_eq(bad, 0, "%s: %d of %d keys differ from libmemcached", what, bad, KETAMA_NKEYS);
}

Test(ketama, md5_rfc1321_vectors)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[16];
        char hex[33];
        sn__md5(v[i].in, strlen(v[i].in), d);
        for (int j = 0; j < 16; j++)
            snprintf(hex + 2 * j, 3, "%02x", d[j]);
        cr_expect_str_eq(hex, v[i].hex, "md5(\"%s\")", v[i].in);
    }
}

/* Padding edge cases: lengths around the 56- and 64-byte boundaries. */
Test(ketama, md5_block_boundaries)
{
    static const char *want[] = {
        [55] = "ef1772b6dff9a122358552954ad0df65", [56] = "3b0c8ac703f828b04c6c197006d17218",
        [57] = "652b906d60af96844ebd21b674f35e93", [63] = "b06521f39153d618550606be297466d5",
        [64] = "014842d480b571495a4a0363793f7367", [65] = "c743a45e0d2e6a95cb859adae0248435",
    };
    char buf[65];
    memset(buf, 'a', sizeof(buf));
    for (size_t len = 55; len <= 65; len++) {
        if (!want[len])
            continue;
        uint8_t d[16];
        char hex[33];
        sn__md5(buf, len, d);
        for (int j = 0; j < 16; j++)
            snprintf(hex + 2 * j, 3, "%02x", d[j]);
        cr_expect_str_eq(hex, want[len], "md5 of %zu x 'a'", len);
    }
}

/* libmemcached computes points per node in float; 25 equal nodes get 156 each, not 160. */
Test(ketama, float_point_counts)
{
    cr_expect_eq(sn__ketama_node_points(1, 8, 8), 160);
    cr_expect_eq(sn__ketama_node_points(1, 25, 25), 156);
    cr_expect_eq(sn__ketama_node_points(1, 1, 1), 160);
    /* Weighted: floor(5/19 * 160/4 * 8) = floor(84.2) = 84 hashes of 4 points. */
    cr_expect_eq(sn__ketama_node_points(5, 19, 8), 4 * 84);
}

Test(ketama, matches_libmemcached_table)
{
    for (size_t s = 0; s < NUM_SETS; s++) {
        struct sn_partition *p = make_set((int)s);
        expect_matches(p, (int)s, ketama_sets[s].name);
        /* The index itself must match too, not only the host. */
        for (int k = 0; k < KETAMA_NKEYS; k++)
            cr_assert_eq(sn_partition(p, ketama_keys[k].key, ketama_keys[k].len),
                         ketama_sets[s].want[k], "%s key %d", ketama_sets[s].name, k);
        sn_partition_destroy(p);
    }
}

/* The same lists through the command-line syntax. */
Test(ketama, from_string_matches_table)
{
    for (size_t s = 0; s < NUM_SETS; s++) {
        char spec[2048] = "ketama:";
        for (unsigned i = 0; i < ketama_sets[s].n; i++) {
            char item[128];
            snprintf(item, sizeof(item), "%s%s:%u:%u", i ? "," : "", ketama_sets[s].srv[i].host,
                     ketama_sets[s].srv[i].port, ketama_sets[s].srv[i].weight);
            strcat(spec, item);
        }
        struct sn_partition *p = NULL;
        char err[256];
        cr_assert_eq(sn_partition_from_string(spec, 0, err, sizeof(err), &p), 0, "%s", err);
        cr_assert_eq(sn_partition_count(p), ketama_sets[s].n);
        expect_matches(p, (int)s, spec);
        sn_partition_destroy(p);
    }
}

Test(ketama, add_and_remove_match_libmemcached)
{
    int equal = set_index("equal"), added = set_index("added"), removed = set_index("removed");
    struct sn_partition *p = make_set(equal);

    cr_assert_eq(sn_partition_ketama_add(p, "10.0.1.9", 11211, 1), 8);
    cr_assert_eq(sn_partition_count(p), 9);
    expect_matches(p, added, "after add");

    cr_assert_eq(sn_partition_ketama_remove(p, "10.0.1.9", 0), 0); /* port 0 = 11211 */
    expect_matches(p, equal, "after add+remove");

    cr_assert_eq(sn_partition_ketama_remove(p, "10.0.1.3", 11212), 0);
    cr_assert_eq(sn_partition_count(p), 7);
    expect_matches(p, removed, "after remove");
    /* Indices after the removed node moved down by one, as in libmemcached's list. */
    cr_expect_str_eq(sn_partition_ketama_host(p, 2), "cache-a.example.com");
    sn_partition_destroy(p);
}

Test(ketama, node_management_errors)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string("ketama:a:11211,b:11300", 0, err, sizeof(err), &p), 0,
                 "%s", err);
    cr_expect_eq(sn_partition_ketama_add(p, "a", 0, 1), -EEXIST);
    cr_expect_eq(sn_partition_ketama_add(p, "", 1, 1), -EINVAL);
    cr_expect_eq(sn_partition_ketama_add(p, "bad host", 1, 1), -EINVAL);
    cr_expect_eq(sn_partition_ketama_add(p, NULL, 1, 1), -EINVAL);
    cr_expect_eq(sn_partition_ketama_remove(p, "b", 11211), -ENOENT);
    cr_expect_eq(sn_partition_ketama_find(p, "b", 11300), 1);
    cr_expect_eq(sn_partition_ketama_find(p, "a", 0), 0);
    cr_expect_eq(sn_partition_ketama_find(p, "c", 0), -ENOENT);
    cr_expect_null(sn_partition_ketama_host(p, 2));
    cr_expect_eq(sn_partition_ketama_remove(p, "a", 11211), 0);
    cr_expect_eq(sn_partition_ketama_remove(p, "b", 11300), -EINVAL, "the last node stays");
    cr_expect_eq(sn_partition_count(p), 1);
    cr_expect_eq(sn_partition(p, "x", 1), 0);
    sn_partition_destroy(p);

    cr_assert_eq(sn_partition_from_string("jump", 4, err, sizeof(err), &p), 0, "%s", err);
    cr_expect_eq(sn_partition_ketama_add(p, "a", 0, 1), -EINVAL);
    cr_expect_eq(sn_partition_ketama_remove(p, "a", 0), -EINVAL);
    cr_expect_eq(sn_partition_ketama_find(p, "a", 0), -EINVAL);
    cr_expect_null(sn_partition_ketama_host(p, 0));
    sn_partition_destroy(p);
}

/* Growing one node at a time from 1 to 40 keeps every result < N and matches a ring built
 * from scratch (add rebuilds with the new total weight, as libmemcached does). */
Test(ketama, incremental_add_equals_fresh)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string("ketama:1", 0, err, sizeof(err), &p), 0, "%s", err);
    for (uint32_t n = 2; n <= 40; n++) {
        char host[32];
        snprintf(host, sizeof(host), "node%u", n - 1);
        cr_assert_eq(sn_partition_ketama_add(p, host, 0, 1), (int)n - 1);
        struct sn_partition *fresh = NULL;
        cr_assert_eq(sn_partition_from_string("ketama", n, err, sizeof(err), &fresh), 0);
        for (uint64_t k = 0; k < 500; k++)
            cr_assert_eq(sn_partition_u64(p, k), sn_partition_u64(fresh, k), "n=%u key %lu", n,
                         (unsigned long)k);
        sn_partition_destroy(fresh);
    }
    sn_partition_destroy(p);
}

Test(ketama, synthetic_nodes_and_default_port)
{
    struct sn_partition *a = NULL, *b = NULL, *c = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string("ketama:3", 0, err, sizeof(err), &a), 0, "%s", err);
    cr_assert_eq(
        sn_partition_from_string("ketama:node0,node1:11211,node2:11211:1", 3, err, sizeof(err), &b),
        0, "%s", err);
    cr_assert_eq(sn_partition_from_string("ketama", 3, err, sizeof(err), &c), 0, "%s", err);
    cr_expect_str_eq(sn_partition_ketama_host(a, 2), "node2");
    for (uint64_t k = 0; k < 2000; k++) {
        uint32_t r = sn_partition_u64(a, k);
        cr_assert_eq(r, sn_partition_u64(b, k));
        cr_assert_eq(r, sn_partition_u64(c, k));
    }
    sn_partition_destroy(a);
    sn_partition_destroy(b);
    sn_partition_destroy(c);
}

/* The XXH3 key hash keeps the ring but hashes keys differently: still < N, deterministic,
 * and not the same mapping as MD5 keys. */
Test(ketama, xxh3_keys)
{
    struct sn_partition *m = NULL, *x = NULL, *x2 = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string("ketama:16", 0, err, sizeof(err), &m), 0, "%s", err);
    cr_assert_eq(sn_partition_from_string("ketama-xxh3:16", 0, err, sizeof(err), &x), 0, "%s", err);
    cr_assert_eq(sn_partition_from_string("ketama-xxh3", 16, err, sizeof(err), &x2), 0, "%s", err);
    int same = 0;
    for (int k = 0; k < KETAMA_NKEYS; k++) {
        uint32_t rm = sn_partition(m, ketama_keys[k].key, ketama_keys[k].len);
        uint32_t rx = sn_partition(x, ketama_keys[k].key, ketama_keys[k].len);
        cr_assert_lt(rx, 16);
        cr_assert_eq(rx, sn_partition(x2, ketama_keys[k].key, ketama_keys[k].len));
        same += rm == rx;
    }
    cr_expect_lt(same, KETAMA_NKEYS / 4, "%d of %d keys agree: expected ~1/16", same, KETAMA_NKEYS);
    sn_partition_destroy(m);
    sn_partition_destroy(x);
    sn_partition_destroy(x2);
}
