/*
 * The ketama ring: its points for each layout, the sorted order, and the bucket index that
 * makes a lookup one table read and a step or two. What must match, and why each detail is
 * the way it is:
 *
 *  Weighted layout (libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, libmemcached 1.0 and
 *  1.1, src/libmemcached/hosts.cc; nutcracker's ketama, src/hashkit/nc_ketama.c):
 *  - Node i gets floor(weight_i / total_weight * 160 / 4 * N) * 4 points, computed in single
 *    precision float exactly as both programs do. The float rounding is part of the format:
 *    with 25 equal nodes each gets 156 points, not 160 (see sn__ketama_node_points).
 *  - Point names are "label-k", k = 0 .. points/4 - 1, where the label is "host" when the port
 *    is 11211 (memcached's default) and "host:port" otherwise; nutcracker uses the server's
 *    name instead when the YAML gives one. Each name's MD5 digest gives 4 points: digest bytes
 *    4a..4a+3 read little-endian, a = 0..3.
 *
 *  Unweighted layout (libmemcached's MEMCACHED_BEHAVIOR_KETAMA and distribution "consistent"):
 *  - 100 points per node (MEMCACHED_POINTS_PER_SERVER), one per name "label-k", k = 0..99,
 *    each the KEY hash of the name (libmemcached hashes them with hashkit_digest, the key
 *    hash, whatever MEMCACHED_BEHAVIOR_KETAMA_HASH says: checked against libmemcached 1.1.4).
 *
 *  Both: the ring is sorted by value; equal values are ordered by node index (libmemcached's
 *  comparator), or for nutcracker by the position of the node's name in nutcracker's server
 *  array, which it sorts by name (length first, then bytes) before building the ring with a
 *  stable sort. A key's 32-bit hash goes to the first point >= it, wrapping to the first point.
 */
#include "partition/partition_internal.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA and MEMCACHED_POINTS_PER_SERVER. */
#define KETAMA_POINTS_PER_NODE     160
#define KETAMA_POINTS_PER_HASH     4
#define UNWEIGHTED_POINTS_PER_NODE 100
/* nutcracker formats point names into char[86] (KETAMA_MAX_HOSTLEN): longer names are cut
 * and then hashed with bytes past the cut, which nothing can reproduce. */
#define NUTCRACKER_MAX_POINT_NAME 85
/* Largest ring index: ~1 bucket per point, at most 2^20 buckets (4 MiB). */
#define KETAMA_MAX_BUCKET_BITS 20

/*
 * Points of one node, as libmemcached computes them. Every step is float arithmetic on
 * purpose; doing it in double or integers would disagree with libmemcached for some N.
 */
uint32_t sn__ketama_node_points(uint32_t weight, uint64_t total_weight, uint32_t live)
{
    float pct = (float)weight / (float)total_weight;
    /* volatile: keeps the compiler from fusing the multiply and add into an FMA (it may with
     * -march=native), which rounds once where libmemcached rounds twice. */
    volatile float scaled = pct * KETAMA_POINTS_PER_NODE / 4 * (float)live;
    float quarter = scaled + 0.0000000001F;
    return (uint32_t)floorf(quarter) * 4;
}

/* Point counts per node for the layout into counts[]; returns their sum (0 on a refused
 * config, with the reason in err). */
static uint64_t point_counts(const struct sn__ketama *k, const struct sn__ketama_node *nodes,
                             uint32_t n, uint32_t *counts, char *err, size_t errlen)
{
    uint64_t total = 0, sum = 0;
    for (uint32_t i = 0; i < n; i++)
        total += nodes[i].weight;
    if (k->layout == SN_KETAMA_RING_NUTCRACKER && total > UINT32_MAX) {
        sn__perr(err, errlen, "nutcracker: weights sum to %llu, above nutcracker's 32-bit total",
                 (unsigned long long)total);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        counts[i] = k->layout == SN_KETAMA_RING_UNWEIGHTED
                        ? UNWEIGHTED_POINTS_PER_NODE
                        : sn__ketama_node_points(nodes[i].weight, total, n);
        sum += counts[i];
    }
    return sum;
}

static unsigned decimal_digits(uint32_t v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* nutcracker's names must fit its buffer with the largest k appended. */
static int check_point_names(const struct sn__ketama_node *node, uint32_t count, char *err,
                             size_t errlen)
{
    if (count == 0)
        return 0;
    size_t longest = strlen(node->label) + 1 + decimal_digits(count / KETAMA_POINTS_PER_HASH - 1);
    if (longest > NUTCRACKER_MAX_POINT_NAME)
        return sn__perr(err, errlen,
                        "nutcracker: point names of \"%s\" reach %zu bytes; nutcracker cuts "
                        "them at %d and hashes past the cut, which cannot be reproduced",
                        node->label, longest, NUTCRACKER_MAX_POINT_NAME);
    return 0;
}

/* Appends the points of node `owner` to pts; returns how many were written. */
static uint32_t node_points(struct sn__ketama_point *pts, const struct sn__ketama *k,
                            const struct sn__ketama_node *node, uint32_t owner, uint32_t count)
{
    char name[SN_PARTITION_KETAMA_MAX_HOST + 32];
    uint32_t w = 0;
    bool unweighted = k->layout == SN_KETAMA_RING_UNWEIGHTED;
    uint32_t names = unweighted ? count : count / KETAMA_POINTS_PER_HASH;
    for (uint32_t i = 0; i < names; i++) {
        int len = snprintf(name, sizeof(name), "%s-%u", node->label, i);
        assert(len > 0 && (size_t)len < sizeof(name));
        if (unweighted) {
            pts[w++] = (struct sn__ketama_point){k->key_fn(name, (size_t)len), owner};
            continue;
        }
        uint8_t d[16];
        sn__md5(name, (size_t)len, d);
        for (int a = 0; a < KETAMA_POINTS_PER_HASH; a++)
            pts[w++] = (struct sn__ketama_point){sn__le32(d + 4 * a), owner};
    }
    return w;
}

/* Tie order of nodes: rank[i] is the position of node i among the nodes in tie order. */
static int point_cmp(const void *a, const void *b, void *ctx)
{
    const struct sn__ketama_point *x = a, *y = b;
    const uint32_t *rank = ctx;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    uint32_t rx = rank ? rank[x->owner] : x->owner, ry = rank ? rank[y->owner] : y->owner;
    return (rx > ry) - (rx < ry);
}

/* nutcracker's server order: by name length, then by the name's bytes. */
static int label_cmp(const void *a, const void *b, void *ctx)
{
    const struct sn__ketama_node *nodes = ctx;
    const char *x = nodes[*(const uint32_t *)a].label, *y = nodes[*(const uint32_t *)b].label;
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return memcmp(x, y, lx);
}

/* For the nutcracker layout, the rank of each node in nutcracker's server order; else NULL
 * (ties by index). Sets *oom when it cannot allocate. */
static uint32_t *tie_ranks(const struct sn__ketama *k, const struct sn__ketama_node *nodes,
                           uint32_t n, bool *oom)
{
    *oom = false;
    if (k->layout != SN_KETAMA_RING_NUTCRACKER)
        return NULL;
    uint32_t *order = malloc(2 * (size_t)n * sizeof(*order));
    if (!order) {
        *oom = true;
        return NULL;
    }
    uint32_t *rank = order + n;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), label_cmp, (void *)nodes);
    for (uint32_t i = 0; i < n; i++)
        rank[order[i]] = i;
    memmove(order, rank, n * sizeof(*order));
    return order;
}

static int build_bucket_index(struct sn__ketama_ring *r)
{
    /* ~2 buckets per point: most buckets then hold at most one point, so the lookup's one
     * unconditional step usually lands on the answer and its fallback loop is rarely taken. */
    unsigned bits = 1;
    while (bits < KETAMA_MAX_BUCKET_BITS && (1u << bits) < 2 * (uint64_t)r->npoints)
        bits++;
    size_t nb = (size_t)1 << bits;
    r->bucket = malloc((nb + 1) * sizeof(*r->bucket));
    if (!r->bucket)
        return -ENOMEM;
    r->bits = bits;
    uint32_t i = 0;
    for (size_t b = 0; b < nb; b++) {
        uint64_t start = (uint64_t)b << (32 - bits);
        while (i < r->npoints && r->points[i].value < start)
            i++;
        r->bucket[b] = i;
    }
    r->bucket[nb] = r->npoints;
    return 0;
}

void sn__ketama_ring_free(struct sn__ketama_ring *r)
{
    free(r->points);
    free(r->bucket);
    memset(r, 0, sizeof(*r));
}

static int out_of_memory(struct sn__ketama_ring *r, char *err, size_t errlen)
{
    sn__ketama_ring_free(r);
    sn__perr(err, errlen, "out of memory");
    return -ENOMEM;
}

/* Fills r->points (npoints + 1 entries) with every node's points; counts[] as point_counts. */
static int fill_points(struct sn__ketama_ring *r, const struct sn__ketama *k,
                       const struct sn__ketama_node *nodes, uint32_t n, const uint32_t *counts,
                       uint64_t npoints, char *err, size_t errlen)
{
    for (uint32_t i = 0; k->layout == SN_KETAMA_RING_NUTCRACKER && i < n; i++) {
        int rc = check_point_names(&nodes[i], counts[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    r->points = malloc((npoints + 1) * sizeof(*r->points)); /* + the sentinel */
    if (!r->points)
        return out_of_memory(r, err, errlen);
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++)
        w += node_points(r->points + w, k, &nodes[i], i, counts[i]);
    /* The heaviest node always gets points (its share times 40 * N is >= 40), so the ring is
     * never empty and a lookup always finds a point. */
    assert(w == npoints && w > 0);
    r->npoints = w;
    return 0;
}

int sn__ketama_ring_build(struct sn__ketama_ring *r, const struct sn__ketama *k,
                          const struct sn__ketama_node *nodes, uint32_t n, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    uint32_t *counts = malloc(n * sizeof(*counts));
    if (!counts)
        return out_of_memory(r, err, errlen);
    uint64_t npoints = point_counts(k, nodes, n, counts, err, errlen);
    int rc = npoints ? fill_points(r, k, nodes, n, counts, npoints, err, errlen) : -EINVAL;
    free(counts);
    if (rc < 0)
        return rc;
    bool oom;
    uint32_t *rank = tie_ranks(k, nodes, n, &oom);
    if (oom)
        return out_of_memory(r, err, errlen);
    qsort_r(r->points, r->npoints, sizeof(*r->points), point_cmp, rank);
    free(rank);
    /* Sentinel: no hash is above it, so a lookup's scan stops there at the latest, and it
     * carries the first point's owner, which is where a hash past the last point wraps to. */
    r->points[r->npoints] = (struct sn__ketama_point){UINT32_MAX, r->points[0].owner};
    if (build_bucket_index(r) < 0)
        return out_of_memory(r, err, errlen);
    return 0;
}

uint32_t sn__ketama_find(const struct sn__ketama_ring *r, uint32_t h)
{
    /* The first point >= h is at or after bucket[b]; the sentinel bounds the scan and maps the
     * wrap past the last point to the first point's owner. One branch-free step covers buckets
     * of at most one point (most of them); the loop handles the rest. */
    uint32_t i = r->bucket[h >> (32 - r->bits)];
    i += r->points[i].value < h;
    if (sn_unlikely(r->points[i].value < h))
        do
            i++;
        while (r->points[i].value < h);
    return r->points[i].owner;
}
