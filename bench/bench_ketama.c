/*
 * bench_ketama: cost per key of each ketama variant libsn reproduces, against libmemcached's
 * memcached_generate_hash on the same servers, layout and key hash, in the same rounds.
 *
 * Variants: the weighted layout with every key hash libmemcached offers (md5, one_at_a_time,
 * crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, murmur, murmur3, jenkins), the unweighted layout
 * (libmemcached's MEMCACHED_BEHAVIOR_KETAMA) with one_at_a_time and md5, and the nutcracker
 * layout with its default fnv1a_64, with and without a hash tag. nutcracker has no library to
 * call, so its peer is libmemcached's weighted ring with the same key hash (the same work:
 * nutcracker's ketama_dispatch is libmemcached's binary search). 8 servers (a pool's size),
 * 16-byte and 100-byte random keys over a pool of 4096 keys, one thread pinned to one CPU.
 *
 *   ns      sn_partition() per key, median over rounds
 *   peer    memcached_generate_hash() per key on the same keys
 *   ratio   ours / peer, the median of per-round ratios (< 1: libsn is faster)
 *
 * Before timing, every variant is checked to pick the same server as libmemcached for every
 * pool key (exits 1 otherwise). Ends with one line `summary: ...` (16-byte keys).
 *
 * Usage: bench_ketama [-r rounds] [-c cpu]
 */
#include <sn.h>

#include <libmemcached/memcached.h>

#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#define POOL       4096
#define MAX_ROUNDS 31
#define TARGET_SEC 0.01
#define NSERVERS   8

struct variant {
    const char *name, *spec_prefix; /* spec_prefix + the server list */
    memcached_behavior_t layout;    /* the peer's */
    memcached_hash_t hash;
};

static const struct variant variants[] = {
    {"weighted md5", "ketama:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, MEMCACHED_HASH_MD5},
    {"weighted one_at_a_time", "ketama-one_at_a_time:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_DEFAULT},
    {"weighted crc", "ketama-crc:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, MEMCACHED_HASH_CRC},
    {"weighted fnv1_64", "ketama-fnv1_64:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1_64},
    {"weighted fnv1a_64", "ketama-fnv1a_64:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1A_64},
    {"weighted fnv1_32", "ketama-fnv1_32:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1_32},
    {"weighted fnv1a_32", "ketama-fnv1a_32:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1A_32},
    {"weighted murmur", "ketama-murmur:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_MURMUR},
    {"weighted murmur3", "ketama-murmur3:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_MURMUR3},
    {"weighted jenkins", "ketama-jenkins:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_JENKINS},
    {"unweighted one_at_a_time", "ketama-unweighted:", MEMCACHED_BEHAVIOR_KETAMA,
     MEMCACHED_HASH_DEFAULT},
    {"unweighted md5", "ketama-unweighted-md5:", MEMCACHED_BEHAVIOR_KETAMA, MEMCACHED_HASH_MD5},
    {"nutcracker fnv1a_64", "nutcracker:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1A_64},
    {"nutcracker fnv1a_64 tag", "nutcracker/{}:", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
     MEMCACHED_HASH_FNV1A_64},
};
#define NVAR (sizeof(variants) / sizeof(variants[0]))
static const size_t key_lens[] = {16, 100};
#define NLENS 2

struct run {
    struct sn_partition *p;
    memcached_st *m;
    uint64_t iters;
    double ns[MAX_ROUNDS], peer[MAX_ROUNDS];
};

static char pool[NLENS][POOL][128];
static volatile uint32_t sink;

/* Random printable keys (memcached keys have no spaces or control bytes), without '{', so
 * the hash-tag variant hashes whole keys as its peer does. */
static void make_pool(void)
{
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (int l = 0; l < NLENS; l++)
        for (int i = 0; i < POOL; i++)
            for (size_t j = 0; j < key_lens[l]; j++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                char c = (char)(33 + (x >> 33) % 94);
                pool[l][i][j] = c == '{' ? 'a' : c; /* no hash tag opens */
            }
}

static void make_run(const struct variant *v, struct run *r)
{
    char spec[512];
    size_t len = (size_t)snprintf(spec, sizeof(spec), "%s", v->spec_prefix);
    r->m = memcached_create(NULL);
    if (!r->m || memcached_behavior_set(r->m, v->layout, 1) != MEMCACHED_SUCCESS ||
        memcached_behavior_set(r->m, MEMCACHED_BEHAVIOR_HASH, v->hash) != MEMCACHED_SUCCESS) {
        fprintf(stderr, "bench_ketama: libmemcached setup failed\n");
        exit(1);
    }
    for (int i = 0; i < NSERVERS; i++) {
        char host[32];
        snprintf(host, sizeof(host), "10.0.0.%d", i + 1);
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%s%s:11211:1", i ? "," : "", host);
        memcached_server_add(r->m, host, 11211);
    }
    char err[256];
    if (sn_partition_from_string(spec, 0, err, sizeof(err), &r->p) < 0) {
        fprintf(stderr, "bench_ketama: %s: %s\n", spec, err);
        exit(1);
    }
}

/* Exits when libsn and libmemcached disagree on a pool key (keys here have no hash tag). */
static void check_same(const struct variant *v, const struct run *r, int l)
{
    for (int i = 0; i < POOL; i++) {
        uint32_t a = sn_partition(r->p, pool[l][i], key_lens[l]);
        uint32_t b = memcached_generate_hash(r->m, pool[l][i], key_lens[l]);
        if (a != b) {
            fprintf(stderr, "bench_ketama: %s: key %d -> %u, libmemcached %u\n", v->name, i, a, b);
            exit(1);
        }
    }
}

static double time_ours(const struct run *r, int l, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_now_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += sn_partition(r->p, pool[l][i % POOL], key_lens[l]);
    double t = bu_now_s() - t0;
    sink = acc;
    return t * 1e9 / (double)iters;
}

static double time_peer(const struct run *r, int l, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_now_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += memcached_generate_hash(r->m, pool[l][i % POOL], key_lens[l]);
    double t = bu_now_s() - t0;
    sink = acc;
    return t * 1e9 / (double)iters;
}

static double ratio_median(const struct run *r, int n)
{
    return bu_median_ratio(r->ns, r->peer, n);
}

int main(int argc, char **argv)
{
    int rounds = 9, cpu = 0;
    if (bu_rounds_cpu(argc, argv, &rounds, &cpu))
        return 2;
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 9;
    bu_pin_self(cpu);
    make_pool();
    static struct run runs[NVAR][NLENS];
    for (size_t v = 0; v < NVAR; v++)
        for (int l = 0; l < NLENS; l++) {
            make_run(&variants[v], &runs[v][l]);
            check_same(&variants[v], &runs[v][l], l);
            double per = time_ours(&runs[v][l], l, 20000);
            runs[v][l].iters = (uint64_t)(TARGET_SEC * 1e9 / (per > 1 ? per : 1)) + 1000;
        }
    /* Rounds interleave every variant with its peer, so drift hits both alike. */
    for (int round = 0; round < rounds; round++)
        for (size_t v = 0; v < NVAR; v++)
            for (int l = 0; l < NLENS; l++) {
                struct run *r = &runs[v][l];
                r->ns[round] = time_ours(r, l, r->iters);
                r->peer[round] = time_peer(r, l, r->iters);
            }
    printf("bench_ketama: libsn vs libmemcached %s, %d servers, ns per key (median of %d rounds), "
           "CPU %d\n",
           memcached_lib_version(), NSERVERS, rounds, cpu);
    printf("  %-26s %9s %9s %7s %9s %9s %7s\n", "variant", "ns/16B", "peer", "ratio", "ns/100B",
           "peer", "ratio");
    for (size_t v = 0; v < NVAR; v++) {
        printf("  %-26s", variants[v].name);
        for (int l = 0; l < NLENS; l++)
            printf(" %9.1f %9.1f %7.3f", bu_median(runs[v][l].ns, rounds),
                   bu_median(runs[v][l].peer, rounds), ratio_median(&runs[v][l], rounds));
        printf("\n");
    }
    printf("summary: weighted_md5_ns=%.1f weighted_md5_ratio=%.3f unweighted_ns=%.1f "
           "unweighted_ratio=%.3f nutcracker_fnv1a_64_ns=%.1f nutcracker_fnv1a_64_ratio=%.3f "
           "weighted_murmur_ns=%.1f weighted_murmur_ratio=%.3f rounds=%d\n",
           bu_median(runs[0][0].ns, rounds), ratio_median(&runs[0][0], rounds),
           bu_median(runs[10][0].ns, rounds), ratio_median(&runs[10][0], rounds),
           bu_median(runs[12][0].ns, rounds), ratio_median(&runs[12][0], rounds),
           bu_median(runs[7][0].ns, rounds), ratio_median(&runs[7][0], rounds), rounds);
    for (size_t v = 0; v < NVAR; v++)
        for (int l = 0; l < NLENS; l++) {
            sn_partition_destroy(runs[v][l].p);
            memcached_free(runs[v][l].m);
        }
    return 0;
}
