/*
 * Ketama consistent hashing that agrees with memcached clients and proxies: the partitioner
 * object, its nodes and their lookups. The ring itself (points per layout, order, index) is
 * in ketama_ring.c, the key hashes in ketama_hash.c.
 *
 * tests/ketama/ holds the libmemcached program that produced the reference table the tests
 * check against; tests/test_ketama_libmemcached.c and tests/test_ketama_nutcracker.c check
 * every layout and key hash against libmemcached and a running nutcracker.
 */
#include "partition/partition_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t sn__ketama_md5_key(const void *key, size_t len)
{
    uint8_t d[16];
    sn__md5(key, len, d);
    return sn__le32(d);
}

/* libmemcached: hash the whole key. */
static uint32_t lookup_plain(const struct sn_partition *p, const void *key, size_t len)
{
    if (p->n == 1)
        return 0; /* libmemcached and nutcracker skip hashing with one server too */
    const struct sn__ketama *k = &p->u.ketama;
    return sn__ketama_find(&k->ring, k->key_fn(key, len));
}

/* nutcracker's hash_tag: a key with a non-empty part between the first tag[0] and the next
 * tag[1] after it is hashed by that part alone (server_pool_idx in nc_server.c). */
static void tag_trim(const struct sn__ketama *k, const void **key, size_t *len)
{
    const char *s = *key, *open = *len ? memchr(s, k->tag[0], *len) : NULL;
    if (!open)
        return;
    size_t after = *len - (size_t)(open - s) - 1;
    const char *close = memchr(open + 1, k->tag[1], after);
    if (close && close - open > 1) {
        *key = open + 1;
        *len = (size_t)(close - open - 1);
    }
}

/* nutcracker: the hash tag, and an empty key hashes to 0 without calling the hash. */
static uint32_t lookup_nutcracker(const struct sn_partition *p, const void *key, size_t len)
{
    if (p->n == 1)
        return 0;
    const struct sn__ketama *k = &p->u.ketama;
    if (k->has_tag)
        tag_trim(k, &key, &len);
    return sn__ketama_find(&k->ring, len ? k->key_fn(key, len) : 0);
}

uint32_t sn__ketama_lookup(const struct sn_partition *p, const void *key, size_t len)
{
    return p->lookup(p, key, len);
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
    if (p->n == 1 || k->key_hash != SN_KETAMA_KEY_MD5 || k->has_tag || width == 1) {
        for (size_t i = 0; i < count; i++)
            out[i] = p->lookup(p, keys[i].data, keys[i].len);
        return;
    }
    /* nutcracker maps the empty key to hash 0, not to MD5(""): such keys take the single path. */
    size_t min_len = k->layout == SN_KETAMA_RING_NUTCRACKER;
    struct md5_batch b = {.used = 0};
    for (size_t i = 0; i < count; i++) {
        if (keys[i].len > MD5_LANES_MAX_KEY || keys[i].len < min_len) {
            out[i] = p->lookup(p, keys[i].data, keys[i].len);
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

/* Validates a host name or node name: non-empty, not too long, printable, no separators. */
static int check_host(const char *what, const char *host, char *err, size_t errlen)
{
    if (!host || !host[0])
        return sn__perr(err, errlen, "ketama: empty %s", what);
    size_t len = strlen(host);
    if (len > SN_PARTITION_KETAMA_MAX_HOST)
        return sn__perr(err, errlen, "ketama: %s longer than %u bytes", what,
                        SN_PARTITION_KETAMA_MAX_HOST);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c == ',' || c == 0x7f)
            return sn__perr(err, errlen, "ketama: bad character 0x%02x in %s \"%s\"", c, what,
                            host);
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

static int find_label(const struct sn__ketama_node *nodes, uint32_t n, const char *label)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(nodes[i].label, label) == 0)
            return (int)i;
    return -ENOENT;
}

static void free_node(struct sn__ketama_node *node)
{
    free(node->host);
    free(node->label);
}

static void free_nodes(struct sn__ketama_node *nodes, uint32_t n)
{
    for (uint32_t i = 0; nodes && i < n; i++)
        free_node(&nodes[i]);
    free(nodes);
}

/*
 * Fills *out from one configured node (host validated, port and weight defaulted, the point
 * label made) and checks it against the n nodes before it. Returns 0, -EINVAL (reason in
 * err), -EEXIST (a duplicate; reason in err) or -ENOMEM.
 */
static int make_node(const struct sn__ketama *k, const struct sn__ketama_node *before, uint32_t n,
                     const struct sn_partition_node *in, const char *name,
                     struct sn__ketama_node *out, char *err, size_t errlen)
{
    int rc = check_host("host name", in->host, err, errlen);
    if (rc == 0 && name)
        rc = check_host("server name", name, err, errlen);
    if (rc == 0 && k->layout == SN_KETAMA_RING_UNWEIGHTED && in->weight > 1)
        rc = sn__perr(err, errlen,
                      "ketama-unweighted: weight %u for %s: libmemcached switches to the "
                      "weighted layout when a weight is above 1; use ketama (weighted)",
                      in->weight, in->host);
    if (rc < 0)
        return rc;
    uint16_t port = norm_port(in->port);
    char label[SN_PARTITION_KETAMA_MAX_HOST + 8];
    if (name)
        snprintf(label, sizeof(label), "%s", name);
    else if (port == SN_PARTITION_KETAMA_DEFAULT_PORT)
        snprintf(label, sizeof(label), "%s", in->host);
    else
        snprintf(label, sizeof(label), "%s:%u", in->host, (unsigned)port);
    /* nutcracker tells servers apart by name alone; libmemcached by host and port. */
    if (k->layout != SN_KETAMA_RING_NUTCRACKER && find_node(before, n, in->host, port) >= 0) {
        sn__perr(err, errlen, "ketama: node %u (%s:%u) is listed twice", n, in->host,
                 (unsigned)port);
        return -EEXIST;
    }
    if (find_label(before, n, label) >= 0) {
        sn__perr(err, errlen, "ketama: node %u has the same name \"%s\" as another", n, label);
        return -EEXIST;
    }
    *out = (struct sn__ketama_node){strdup(in->host), strdup(label), port,
                                    in->weight ? in->weight : 1, name != NULL};
    if (!out->host || !out->label) {
        free_node(out);
        return -ENOMEM;
    }
    return 0;
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
        struct sn_partition_node in = {synth, 0, 0};
        if (cfg->nodes)
            in = cfg->nodes[i];
        else
            snprintf(synth, sizeof(synth), "node%u", i);
        const char *name = cfg->ketama_names ? cfg->ketama_names[i] : NULL;
        int rc = make_node(k, k->nodes, i, &in, name, &k->nodes[i], err, errlen);
        if (rc < 0)
            return rc == -EEXIST ? -EINVAL : rc;
    }
    return 0;
}

/* The layout, key hash and hash tag of the config. */
static int set_options(struct sn__ketama *k, const struct sn_partition_config *cfg, char *err,
                       size_t errlen)
{
    if (cfg->ketama_ring != SN_KETAMA_RING_WEIGHTED &&
        cfg->ketama_ring != SN_KETAMA_RING_UNWEIGHTED &&
        cfg->ketama_ring != SN_KETAMA_RING_NUTCRACKER)
        return sn__perr(err, errlen, "ketama: unknown ring layout %d", (int)cfg->ketama_ring);
    const struct sn__ketama_hash_info *h = sn__ketama_hash_info(cfg->ketama_key_hash);
    if (!h)
        return sn__perr(err, errlen, "ketama: unknown key hash %d", (int)cfg->ketama_key_hash);
    k->layout = cfg->ketama_ring;
    k->key_hash = cfg->ketama_key_hash;
    k->key_fn = h->fn;
    if (cfg->ketama_names && k->layout != SN_KETAMA_RING_NUTCRACKER)
        return sn__perr(err, errlen,
                        "ketama: server names are nutcracker's (ketama_ring "
                        "SN_KETAMA_RING_NUTCRACKER); libmemcached hashes host:port");
    const char *tag = cfg->ketama_hash_tag;
    if (!tag)
        return 0;
    if (k->layout != SN_KETAMA_RING_NUTCRACKER)
        return sn__perr(err, errlen,
                        "ketama: a hash tag is nutcracker's (ketama_ring "
                        "SN_KETAMA_RING_NUTCRACKER)");
    if (strlen(tag) != 2)
        return sn__perr(err, errlen, "nutcracker: hash tag \"%s\" must be two characters", tag);
    k->has_tag = true;
    memcpy(k->tag, tag, 2);
    return 0;
}

int sn__ketama_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                    size_t errlen)
{
    struct sn__ketama *k = &p->u.ketama;
    if (cfg->n > SN_PARTITION_KETAMA_MAX_NODES)
        return sn__perr(err, errlen, "ketama: %u nodes is above the limit %u", cfg->n,
                        SN_PARTITION_KETAMA_MAX_NODES);
    int rc = set_options(k, cfg, err, errlen);
    if (rc < 0)
        return rc;
    p->lookup = k->layout == SN_KETAMA_RING_NUTCRACKER ? lookup_nutcracker : lookup_plain;
    rc = copy_nodes(k, cfg, err, errlen);
    if (rc == 0)
        rc = sn__ketama_ring_build(&k->ring, k, k->nodes, cfg->n, err, errlen);
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
    sn__ketama_ring_free(&p->u.ketama.ring);
}

int sn_partition_ketama_add(struct sn_partition *p, const char *host, uint16_t port,
                            uint32_t weight)
{
    if (p->kind != SN_PARTITION_KETAMA || p->n >= SN_PARTITION_KETAMA_MAX_NODES)
        return -EINVAL;
    struct sn__ketama *k = &p->u.ketama;
    if (p->n == k->cap) {
        uint32_t cap = k->cap * 2;
        struct sn__ketama_node *nn = realloc(k->nodes, cap * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        k->nodes = nn;
        k->cap = cap;
    }
    struct sn_partition_node in = {host, port, weight};
    int rc = make_node(k, k->nodes, p->n, &in, NULL, &k->nodes[p->n], NULL, 0);
    if (rc < 0)
        return rc;
    struct sn__ketama_ring r;
    rc = sn__ketama_ring_build(&r, k, k->nodes, p->n + 1, NULL, 0);
    if (rc < 0) {
        free_node(&k->nodes[p->n]);
        return rc;
    }
    sn__ketama_ring_free(&k->ring);
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
    int rc = sn__ketama_ring_build(&r, k, rest, p->n - 1, NULL, 0);
    free(rest);
    if (rc < 0)
        return rc;
    free_node(&k->nodes[idx]);
    memmove(k->nodes + idx, k->nodes + idx + 1, tail * sizeof(*k->nodes));
    sn__ketama_ring_free(&k->ring);
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
