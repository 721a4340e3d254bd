/*
 * The ketama ring search (bucket index + sentinel, partition/ketama.c) against a plain binary
 * search over the sorted points (a different method, so a shared mistake is unlikely): hashes equal to every point, one either side of it, 0,
 * UINT32_MAX (the wrap) and random ones, for several ring sizes, weights and after add/remove.
 */
#include <criterion/criterion.h>

#include "partition/partition_internal.h"

#include <stdio.h>

/* The definition: the first point whose value is >= h, else the first point. */
static uint32_t find_bsearch(const struct sn__ketama_ring *r, uint32_t h)
{
    uint32_t lo = 0, hi = r->npoints; /* answer in [lo, hi]; hi = npoints means wrap */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].value < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->points[lo == r->npoints ? 0 : lo].owner;
}

static unsigned check_hash(const struct sn__ketama_ring *r, uint32_t h)
{
    uint32_t want = find_bsearch(r, h), got = sn__ketama_find(r, h);
    if (want == got)
        return 0;
    cr_log_info("h=%#x: got owner %u, want %u", h, got, want);
    return 1;
}

static void check_ring(const struct sn_partition *p)
{
    const struct sn__ketama_ring *r = &p->u.ketama.ring;
    unsigned bad = check_hash(r, 0) + check_hash(r, UINT32_MAX);
    for (uint32_t i = 0; i < r->npoints; i++) {
        uint32_t v = r->points[i].value;
        bad += check_hash(r, v) + check_hash(r, v - 1) + check_hash(r, v + 1);
    }
    uint64_t s = 0x1234567;
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        bad += check_hash(r, (uint32_t)(s >> 32));
    }
    cr_assert_eq(bad, 0, "%u mismatches on a ring of %u points", bad, r->npoints);
    cr_assert_eq(r->points[r->npoints].value, UINT32_MAX, "sentinel value");
    cr_assert_eq(r->points[r->npoints].owner, r->points[0].owner, "sentinel owner");
}

static struct sn_partition *ketama(uint32_t n, const struct sn_partition_node *nodes)
{
    struct sn_partition_config c = {.kind = SN_PARTITION_KETAMA, .n = n, .nodes = nodes};
    struct sn_partition *p = NULL;
    char err[128];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    return p;
}

Test(ketama_find, matches_binary_search, .timeout = 60)
{
    static const uint32_t ns[] = {2, 3, 7, 100, 1000};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        struct sn_partition *p = ketama(ns[i], NULL);
        check_ring(p);
        sn_partition_destroy(p);
    }
}

Test(ketama_find, weighted_and_after_add_remove, .timeout = 60)
{
    struct sn_partition_node nodes[] = {
        {.host = "10.0.0.1", .port = 11211, .weight = 1},
        {.host = "10.0.0.2", .port = 11212, .weight = 5},
        {.host = "cache-c", .port = 0, .weight = 2},
    };
    struct sn_partition *p = ketama(3, nodes);
    check_ring(p);
    cr_assert_geq(sn_partition_ketama_add(p, "cache-d", 11211, 3), 0);
    check_ring(p);
    cr_assert_eq(sn_partition_ketama_remove(p, "10.0.0.1", 11211), 0);
    check_ring(p);
    cr_assert_eq(sn_partition_ketama_remove(p, "cache-c", 0), 0);
    check_ring(p);
    sn_partition_destroy(p);
}
