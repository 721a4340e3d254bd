/*
 * Ketama consistent hashing, compatible with libmemcached's weighted ketama distribution
 * (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, libmemcached 1.0 and 1.1, src/libmemcached/hosts.cc).
 * What must match, and why each detail is the way it is:
 *
 *  - Node i gets floor(weight_i / total_weight * 160 / 4 * N) * 4 points, computed in single
 *    precision float exactly as libmemcached does. The float rounding is part of the format:
 *    with 25 equal nodes each gets 156 points, not 160 (see sn__ketama_node_points).
 *  - Point names are "host-k" when the port is 11211 (memcached's default) and "host:port-k"
 *    otherwise, k = 0 .. points/4 - 1. Each name's MD5 digest gives 4 points: digest bytes
 *    4a..4a+3 read little-endian, a = 0..3.
 *  - The ring is sorted by value, ties by node index; a key's 32-bit hash goes to the first
 *    point >= it, wrapping to the first point. With one node every key goes to it.
 *  - The key hash is MD5, digest bytes 0..3 little-endian (libhashkit's hashkit_md5).
 *
 * tests/ketama/ holds the libmemcached program that produced the reference table the tests
 * check against.
 */
#include "partition/partition_internal.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA. */
#define KETAMA_POINTS_PER_NODE 160
#define KETAMA_POINTS_PER_HASH 4
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

uint32_t sn__ketama_md5_key(const void *key, size_t len)
{
    uint8_t d[16];
    sn__md5(key, len, d);
    return sn__le32(d);
}

static int point_cmp(const void *a, const void *b)
{
    const struct sn__ketama_point *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->owner > y->owner) - (x->owner < y->owner);
}

/* Appends the points of node `owner` to pts; returns how many were written. */
static uint32_t node_points(struct sn__ketama_point *pts, const struct sn__ketama_node *node,
                            uint32_t owner, uint32_t count)
{
    char name[SN_PARTITION_KETAMA_MAX_HOST + 32];
    uint32_t w = 0;
    for (uint32_t k = 0; k < count / KETAMA_POINTS_PER_HASH; k++) {
        int len =
            node->port == SN_PARTITION_KETAMA_DEFAULT_PORT
                ? snprintf(name, sizeof(name), "%s-%u", node->host, k)
                : snprintf(name, sizeof(name), "%s:%u-%u", node->host, (unsigned)node->port, k);
        uint8_t d[16];
        sn__md5(name, (size_t)len, d);
        for (int a = 0; a < KETAMA_POINTS_PER_HASH; a++) {
            pts[w++] = (struct sn__ketama_point){sn__le32(d + 4 * a), owner};
        }
    }
    return w;
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

static void ring_free(struct sn__ketama_ring *r)
{
    free(r->points);
    free(r->bucket);
    memset(r, 0, sizeof(*r));
}

/* Builds a ring for nodes[0..n) into *r. On failure *r is left empty and -ENOMEM returned. */
static int ring_build(struct sn__ketama_ring *r, const struct sn__ketama_node *nodes, uint32_t n)
{
    memset(r, 0, sizeof(*r));
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += nodes[i].weight;
    uint64_t npoints = 0;
    for (uint32_t i = 0; i < n; i++)
        npoints += sn__ketama_node_points(nodes[i].weight, total, n);
    r->points = malloc((npoints + 1) * sizeof(*r->points)); /* + the sentinel */
    if (!r->points)
        return -ENOMEM;
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++)
        w += node_points(r->points + w, &nodes[i], i,
                         sn__ketama_node_points(nodes[i].weight, total, n));
    /* The heaviest node always gets points (its share times 40 * N is >= 40), so the ring is
     * never empty and a lookup always finds a point. */
    assert(w > 0);
    r->npoints = w;
    qsort(r->points, w, sizeof(*r->points), point_cmp);
    /* Sentinel: no hash is above it, so a lookup's scan stops there at the latest, and it
     * carries the first point's owner, which is where a hash past the last point wraps to. */
    r->points[w] = (struct sn__ketama_point){UINT32_MAX, r->points[0].owner};
    if (build_bucket_index(r) < 0) {
        ring_free(r);
        return -ENOMEM;
    }
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

uint32_t sn__ketama_lookup(const struct sn_partition *p, const void *key, size_t len)
{
    if (p->n == 1)
        return 0; /* libmemcached skips hashing with one server too */
    const struct sn__ketama *k = &p->u.ketama;
    uint32_t h = k->key_hash == SN_KETAMA_KEY_MD5 ? sn__ketama_md5_key(key, len)
                                                  : (uint32_t)(sn__key_hash(key, len) >> 32);
    return sn__ketama_find(&k->ring, h);
}

/* Keys waiting for multi-lane MD5, and where their results go. */
struct md5_batch {
    struct sn_partition_key keys[MD5_LANES_MAX];
    size_t where[MD5_LANES_MAX];
    unsigned used;
};

static void md5_batch_flush(const struct sn__ketama_ring *ring, struct md5_batch *b, uint32_t *out)
{
    uint32_t h[MD5_LANES_MAX];
    sn__md5_lanes(b->keys, b->used, h);
    for (unsigned j = 0; j < b->used; j++)
        out[b->where[j]] = sn__ketama_find(ring, h[j]);
    b->used = 0;
}

void sn__ketama_lookup_many(const struct sn_partition *p, const struct sn_partition_key *keys,
                            size_t count, uint32_t *out)
{
    const struct sn__ketama *k = &p->u.ketama;
    unsigned width = sn__md5_lanes_width();
    if (p->n == 1 || k->key_hash != SN_KETAMA_KEY_MD5 || width == 1) {
        for (size_t i = 0; i < count; i++)
            out[i] = sn__ketama_lookup(p, keys[i].data, keys[i].len);
        return;
    }
    struct md5_batch b = {.used = 0};
    for (size_t i = 0; i < count; i++) {
        if (keys[i].len > MD5_LANES_MAX_KEY) {
            out[i] = sn__ketama_lookup(p, keys[i].data, keys[i].len);
            continue;
        }
        b.keys[b.used] = keys[i];
        b.where[b.used++] = i;
        if (b.used == width)
            md5_batch_flush(&k->ring, &b, out);
    }
    if (b.used)
        md5_batch_flush(&k->ring, &b, out);
}

/* Validates a host name: non-empty, not too long, printable, no separators. */
static int check_host(const char *host, char *err, size_t errlen)
{
    if (!host || !host[0])
        return sn__perr(err, errlen, "ketama: empty host name");
    size_t len = strlen(host);
    if (len > SN_PARTITION_KETAMA_MAX_HOST)
        return sn__perr(err, errlen, "ketama: host name longer than %u bytes",
                        SN_PARTITION_KETAMA_MAX_HOST);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c == ',' || c == 0x7f)
            return sn__perr(err, errlen, "ketama: bad character 0x%02x in host \"%s\"", c, host);
    }
    return 0;
}

static uint16_t norm_port(uint16_t port)
{
    return port ? port : SN_PARTITION_KETAMA_DEFAULT_PORT;
}

static int find_node(const struct sn__ketama_node *nodes, uint32_t n, const char *host,
                     uint16_t port)
{
    port = norm_port(port);
    for (uint32_t i = 0; i < n; i++)
        if (nodes[i].port == port && strcmp(nodes[i].host, host) == 0)
            return (int)i;
    return -ENOENT;
}

static void free_nodes(struct sn__ketama_node *nodes, uint32_t n)
{
    for (uint32_t i = 0; nodes && i < n; i++)
        free(nodes[i].host);
    free(nodes);
}

static int copy_nodes(struct sn__ketama *k, const struct sn_partition_config *cfg, char *err,
                      size_t errlen)
{
    uint32_t n = cfg->n;
    k->nodes = calloc(n, sizeof(*k->nodes));
    if (!k->nodes)
        return -ENOMEM;
    k->cap = n;
    for (uint32_t i = 0; i < n; i++) {
        char synth[32];
        const struct sn_partition_node *in = cfg->nodes ? &cfg->nodes[i] : NULL;
        const char *host = in ? in->host : synth;
        if (!in)
            snprintf(synth, sizeof(synth), "node%u", i);
        int rc = check_host(host, err, errlen);
        if (rc < 0)
            return rc;
        uint16_t port = norm_port(in ? in->port : 0);
        if (find_node(k->nodes, i, host, port) >= 0)
            return sn__perr(err, errlen, "ketama: node %u (%s:%u) is listed twice", i, host,
                            (unsigned)port);
        k->nodes[i].host = strdup(host);
        if (!k->nodes[i].host)
            return -ENOMEM;
        k->nodes[i].port = port;
        k->nodes[i].weight = in && in->weight ? in->weight : 1;
    }
    return 0;
}

int sn__ketama_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                    size_t errlen)
{
    struct sn__ketama *k = &p->u.ketama;
    if (cfg->n > SN_PARTITION_KETAMA_MAX_NODES)
        return sn__perr(err, errlen, "ketama: %u nodes is above the limit %u", cfg->n,
                        SN_PARTITION_KETAMA_MAX_NODES);
    if (cfg->ketama_key_hash != SN_KETAMA_KEY_MD5 && cfg->ketama_key_hash != SN_KETAMA_KEY_XXH3)
        return sn__perr(err, errlen, "ketama: unknown key hash %d", (int)cfg->ketama_key_hash);
    k->key_hash = cfg->ketama_key_hash;
    int rc = copy_nodes(k, cfg, err, errlen);
    if (rc == 0)
        rc = ring_build(&k->ring, k->nodes, cfg->n);
    if (rc < 0) {
        if (rc == -ENOMEM)
            sn__perr(err, errlen, "out of memory");
        free_nodes(k->nodes, cfg->n);
        k->nodes = NULL;
    }
    return rc;
}

void sn__ketama_free(struct sn_partition *p)
{
    free_nodes(p->u.ketama.nodes, p->n);
    ring_free(&p->u.ketama.ring);
}

int sn_partition_ketama_add(struct sn_partition *p, const char *host, uint16_t port,
                            uint32_t weight)
{
    if (p->kind != SN_PARTITION_KETAMA || check_host(host, NULL, 0) < 0 ||
        p->n >= SN_PARTITION_KETAMA_MAX_NODES)
        return -EINVAL;
    struct sn__ketama *k = &p->u.ketama;
    if (find_node(k->nodes, p->n, host, port) >= 0)
        return -EEXIST;
    if (p->n == k->cap) {
        uint32_t cap = k->cap * 2;
        struct sn__ketama_node *nn = realloc(k->nodes, cap * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        k->nodes = nn;
        k->cap = cap;
    }
    char *h = strdup(host);
    if (!h)
        return -ENOMEM;
    k->nodes[p->n] = (struct sn__ketama_node){h, norm_port(port), weight ? weight : 1};
    struct sn__ketama_ring r;
    if (ring_build(&r, k->nodes, p->n + 1) < 0) {
        free(h);
        return -ENOMEM;
    }
    ring_free(&k->ring);
    k->ring = r;
    return (int)p->n++;
}

int sn_partition_ketama_remove(struct sn_partition *p, const char *host, uint16_t port)
{
    if (p->kind != SN_PARTITION_KETAMA || !host)
        return -EINVAL;
    struct sn__ketama *k = &p->u.ketama;
    int idx = find_node(k->nodes, p->n, host, port);
    if (idx < 0)
        return idx;
    if (p->n == 1)
        return -EINVAL;
    /* Build the new ring from a shallow copy first, so a failed allocation changes nothing. */
    struct sn__ketama_node *rest = malloc((p->n - 1) * sizeof(*rest));
    if (!rest)
        return -ENOMEM;
    uint32_t tail = p->n - (uint32_t)idx - 1;
    memcpy(rest, k->nodes, (size_t)idx * sizeof(*rest));
    memcpy(rest + idx, k->nodes + idx + 1, tail * sizeof(*rest));
    struct sn__ketama_ring r;
    int rc = ring_build(&r, rest, p->n - 1);
    free(rest);
    if (rc < 0)
        return rc;
    free(k->nodes[idx].host);
    memmove(k->nodes + idx, k->nodes + idx + 1, tail * sizeof(*k->nodes));
    ring_free(&k->ring);
    k->ring = r;
    p->n--;
    return 0;
}

int sn_partition_ketama_find(const struct sn_partition *p, const char *host, uint16_t port)
{
    if (p->kind != SN_PARTITION_KETAMA || !host)
        return -EINVAL;
    return find_node(p->u.ketama.nodes, p->n, host, port);
}

const char *sn_partition_ketama_host(const struct sn_partition *p, uint32_t i)
{
    if (p->kind != SN_PARTITION_KETAMA || i >= p->n)
        return NULL;
    return p->u.ketama.nodes[i].host;
}
