/*
 * libsn's nutcracker layout against nutcracker itself (Debian package nutcracker): four sn-kv
 * backends, one nutcracker with a pool per key hash (distribution: ketama), keys set through
 * each pool, then every backend asked which keys it holds. Each key must be on exactly the
 * backend that sn_partition picks with the equivalent spec "nutcracker-HASH:...". Three server
 * lists: weighted with a port other than 11211, named servers ("host:port:weight name"), and
 * equal weights, plus a pool with a hash tag. Keys include bytes >= 0x80, where several
 * hashes sign-extend.
 *
 * In a private network namespace (root) the backends are 127.0.0.1-4 on port 11211 as in a
 * real pool; otherwise the host's loopback with free ports. Every process is stopped at the
 * end (su_reap_all).
 *
 * SN_KETAMA_KEYS=N sets the keys per pool; the 100,000-key run recorded in docs/CLUSTER.md is
 *   SN_KETAMA_KEYS=100000 build/tests/test_ketama_nutcracker --verbose
 * which prints one "ketama-compat:" line per pool.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "tests/cluster_util.h"
#include "tests/support/server_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBACK        4
#define DEFAULT_KEYS 2000
#define MAX_POOLS    16

static void fini(void)
{
    cl_cleanup();
}

TestSuite(ketama_nutcracker, .fini = fini);

static const char *const nc_hashes[] = {"one_at_a_time", "md5",     "crc16",    "crc32",
                                        "crc32a",        "fnv1_64", "fnv1a_64", "fnv1_32",
                                        "fnv1a_32",      "hsieh",   "murmur",   "jenkins"};
#define NHASHES (sizeof(nc_hashes) / sizeof(nc_hashes[0]))

struct server_list {
    const char *name;
    unsigned weight[NBACK];
    const char *server_name[NBACK]; /* NULL: unnamed */
    bool port_11211[NBACK];         /* in a private namespace; false: another port */
};

struct pool {
    const char *hash, *tag;
    struct cl_addr listen;
    char spec[1024];
};

struct rig {
    bool private_net;
    struct cl_addr back[NBACK];
    struct pool pool[MAX_POOLS];
    unsigned npools;
    char dir[64], conf[128];
};

static unsigned key_count(void)
{
    const char *e = getenv("SN_KETAMA_KEYS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 ? (unsigned)v : DEFAULT_KEYS;
}

/* Writes one pool's YAML and its libsn spec. */
static void add_pool(struct rig *r, FILE *yaml, const struct server_list *l, const char *hash,
                     const char *tag)
{
    cr_assert_lt(r->npools, MAX_POOLS);
    unsigned i = r->npools++;
    struct pool *p = &r->pool[i];
    p->hash = hash;
    p->tag = tag;
    snprintf(p->listen.host, sizeof(p->listen.host), "127.0.0.%u", r->private_net ? 100 : 1);
    p->listen.port = r->private_net ? (uint16_t)(22000 + i) : cl_free_port(p->listen.host);
    fprintf(yaml, "pool%u:\n  listen: %s:%u\n  hash: %s\n  distribution: ketama\n", i,
            p->listen.host, p->listen.port, hash);
    if (tag)
        fprintf(yaml, "  hash_tag: \"%s\"\n", tag);
    fprintf(yaml, "  timeout: 5000\n  server_connections: 1\n  servers:\n");
    int len = snprintf(p->spec, sizeof(p->spec), "nutcracker-%s%s%s:", hash, tag ? "/" : "",
                       tag ? tag : "");
    for (unsigned b = 0; b < NBACK; b++) {
        char server[96];
        snprintf(server, sizeof(server), "%s:%u:%u%s%s", r->back[b].host, r->back[b].port,
                 l->weight[b], l->server_name[b] ? " " : "",
                 l->server_name[b] ? l->server_name[b] : "");
        fprintf(yaml, "   - %s\n", server);
        len += snprintf(p->spec + len, sizeof(p->spec) - (size_t)len, "%s%s", b ? "," : "", server);
    }
}

/* Backends for list l, and one nutcracker with a pool per hash (plus `tag` pools). */
static void rig_start(struct rig *r, const struct server_list *l, bool with_tag)
{
    memset(r, 0, sizeof(*r));
    r->private_net = cl_private_net();
    for (unsigned b = 0; b < NBACK; b++) {
        r->back[b] = cl_pool_addr(b, r->private_net, l->port_11211[b]);
        cl_start_kv(&r->back[b]);
    }
    cl_tmpdir(r->dir, sizeof(r->dir));
    snprintf(r->conf, sizeof(r->conf), "%s/nutcracker.yml", r->dir);
    FILE *yaml = fopen(r->conf, "w");
    cr_assert_not_null(yaml);
    for (size_t h = 0; h < NHASHES; h++)
        add_pool(r, yaml, l, nc_hashes[h], NULL);
    if (with_tag) {
        add_pool(r, yaml, l, "fnv1a_64", "{}");
        add_pool(r, yaml, l, "md5", "<>");
    }
    fclose(yaml);
    struct cl_addr listen[MAX_POOLS];
    for (unsigned i = 0; i < r->npools; i++)
        listen[i] = r->pool[i].listen;
    cl_start_nutcracker(r->conf, listen, r->npools);
}

static uint64_t rng(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

/* Keys valid for memcached (no space or control byte, 1..250 bytes), distinct per pool:
 * mostly short, some past one MD5 block, a quarter with bytes >= 0x80, and for tag pools
 * most with a tag somewhere inside. */
static char **make_keys(unsigned pool, unsigned n, const char *tag)
{
    static const char printable[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                    "_:-.!#$%&'()*+/;<=>?@[]^`|~\"{}";
    char **keys = malloc(n * sizeof(*keys));
    cr_assert_not_null(keys);
    uint64_t x = 0x5eed0000u + pool;
    for (unsigned i = 0; i < n; i++) {
        char k[256];
        int len = snprintf(k, sizeof(k), "%u.%u.", pool, i);
        size_t extra = rng(&x) % 8 == 0 ? 50 + rng(&x) % 180 : rng(&x) % 30;
        bool high = rng(&x) % 4 == 0;
        for (size_t j = 0; j < extra; j++) {
            uint64_t c = rng(&x);
            k[len++] = high && c % 3 == 0 ? (char)(0x80 + c % 127)
                                          : printable[c % (sizeof(printable) - 1)];
        }
        if (tag && rng(&x) % 4 != 0) {
            int at = (int)(rng(&x) % (uint64_t)len);
            char inner[24];
            int il =
                snprintf(inner, sizeof(inner), "%c%u%c", tag[0], (unsigned)(rng(&x) % 50), tag[1]);
            memmove(k + at + il, k + at, (size_t)(len - at));
            memcpy(k + at, inner, (size_t)il);
            len += il;
        }
        cr_assert_leq(len, 250, "memcached keys are at most 250 bytes");
        k[len] = '\0';
        keys[i] = strdup(k);
        cr_assert_not_null(keys[i]);
    }
    return keys;
}

/* Sets the pool's keys through nutcracker, finds each on the backends; returns mismatches. */
static unsigned check_pool(struct rig *r, unsigned i, unsigned n, const char *list)
{
    struct pool *p = &r->pool[i];
    char **keys = make_keys(i, n, p->tag);
    char other[256];
    int fd = cl_connect(&p->listen);
    cr_assert_geq(fd, 0);
    size_t stored = cl_set_many(fd, keys, n, "v", other, sizeof(other));
    cr_assert_eq(stored, n, "pool %s %s: %zu of %u stored; first other reply: %s", list, p->hash,
                 stored, n, other);
    close(fd);

    int *owner = malloc(n * sizeof(*owner));
    bool *held = malloc(n * sizeof(*held));
    cr_assert(owner && held);
    for (unsigned k = 0; k < n; k++)
        owner[k] = -1;
    for (unsigned b = 0; b < NBACK; b++) {
        fd = cl_connect(&r->back[b]);
        cr_assert_geq(fd, 0);
        cr_assert_neq(cl_held(fd, keys, n, "v", held), (size_t)-1);
        for (unsigned k = 0; k < n; k++)
            if (held[k])
                owner[k] = owner[k] == -1 ? (int)b : -2; /* -2: on two backends */
        char reply[64];
        cr_assert_eq(cl_command(fd, "flush_all", reply, sizeof(reply)), 0);
        close(fd);
    }
    struct sn_partition *part = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(p->spec, 0, err, sizeof(err), &part), 0, "%s: %s",
                 p->spec, err);
    unsigned bad = 0, used[NBACK] = {0};
    for (unsigned k = 0; k < n; k++) {
        int want = (int)sn_partition(part, keys[k], strlen(keys[k]));
        if (owner[k] >= 0)
            used[owner[k]]++;
        if (owner[k] != want && bad++ < 3)
            cr_log_error("%s %s: key \"%s\" is on backend %d, libsn says %d", list, p->hash,
                         keys[k], owner[k], want);
    }
    cr_log_info("ketama-compat: peer=nutcracker hash=%s%s%s list=%s keys=%u mismatches=%u "
                "per-backend=%u,%u,%u,%u",
                p->hash, p->tag ? " hash_tag=" : "", p->tag ? p->tag : "", list, n, bad, used[0],
                used[1], used[2], used[3]);
    sn_partition_destroy(part);
    for (unsigned k = 0; k < n; k++)
        free(keys[k]);
    free(keys);
    free(owner);
    free(held);
    return bad;
}

static void check_list(const struct server_list *l, bool with_tag)
{
    struct rig r;
    rig_start(&r, l, with_tag);
    unsigned n = key_count(), total = 0;
    for (unsigned i = 0; i < r.npools; i++) {
        unsigned bad = check_pool(&r, i, n, l->name);
        cr_expect_eq(bad, 0, "%s: %u of %u keys not where libsn puts them (%s)", r.pool[i].spec,
                     bad, n, r.private_net ? "private namespace" : "host loopback");
        total += bad;
    }
    su_reap_all();
    cl_rmdir(r.dir);
    cr_log_info("ketama-compat: list=%s pools=%u keys=%u mismatches=%u (%s)", l->name, r.npools,
                r.npools * n, total,
                r.private_net ? "127.0.0.1-4, private namespace" : "free ports");
}

Test(ketama_nutcracker, weighted_list, .timeout = 900)
{
    static const struct server_list l = {
        "weighted", {1, 2, 3, 1}, {NULL, NULL, NULL, NULL}, {true, true, false, true}};
    check_list(&l, false);
}

Test(ketama_nutcracker, named_servers, .timeout = 900)
{
    static const struct server_list l = {"named",
                                         {1, 1, 2, 1},
                                         {"alpha", "beta", "gamma", "delta.cache-4"},
                                         {true, true, true, true}};
    check_list(&l, false);
}

Test(ketama_nutcracker, equal_weights_and_hash_tags, .timeout = 900)
{
    static const struct server_list l = {
        "equal", {1, 1, 1, 1}, {NULL, NULL, NULL, NULL}, {true, true, true, true}};
    check_list(&l, true);
}
