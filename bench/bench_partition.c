/*
 * bench_partition: cost per key of every partitioner, load balance, and keys moved on N -> N+1.
 *
 * For each strategy (hash, jump, ketama with MD5 keys, ketama with XXH3 keys, rendezvous,
 * range over byte strings) at N = 2, 64 and 1024, with 16-byte and 100-byte random keys:
 *
 *   ns/key    sn_partition() over a pool of 2^16 pre-generated keys, one thread pinned to one CPU;
 *   peer      a plain `XXH3_64bits(key, len) % N` loop over the same keys, the hand-written
 *             baseline a user would otherwise reach for, as gcc builds it (XXH_INLINE_ALL, but
 *             gcc calls XXH3_64bits: it is too big to inline); for hash also the same line with
 *             XXH3 forced inline (its own table: no call, and the length dispatch hoisted out
 *             of the loop, which no library call can match);
 *   ratio     ours / peer, the median of per-round ratios;
 *   max/mean  the fullest partition's load over the mean, over 2^20 random 16-byte keys
 *             (2^18 for rendezvous at N = 1024, which costs N mixes per key);
 *   moved     fraction of those keys whose partition changes when N grows to N+1 (not given
 *             for range, whose split points are the user's to choose).
 *
 * Jump is also timed against the loop exactly as printed in Lamping & Veach's paper (over the
 * same XXH3 key hash, in the same rounds), since libsn's jump is a reformulation of that loop
 * that must return the same buckets (tests/test_partition_jump.c) and should be faster.
 * Ketama with MD5 keys is also timed against libmemcached's memcached_generate_hash on the
 * same nodes (weighted ketama, up to libmemcached's limit of 100 servers), the library a
 * memcached user would otherwise call; the bench first checks that both pick the same node
 * for every pool key. `many_ns` is sn_partition_many, 64 keys per call.
 *
 * The pool is larger than a branch predictor can learn: walked in the same order every pass,
 * a pool of 4096 keys let an AMD Zen 5 predict the exits of jump's loop forms (9-10 ns a key
 * against 30 on distinct keys at N = 1024); from 16384 keys on it cannot (scratch timing,
 * docs/PERFORMANCE.md), and real keys do not repeat like that. 2^16 keys still fit in L2, so
 * the peer's cost stays that of hashing, not of memory. Key i is the `len` bytes at offset
 * 16 * i of one random buffer (100-byte keys overlap their neighbours; all are distinct).
 *
 * Times are the thread's CPU time (time slices taken by other jobs do not count). The
 * machine is shared and noisy all the same, so every figure is measured once per round, in rounds
 * that interleave all configurations with their peer, and reported as the median over rounds. The
 * last line is `summary: ...` with 16-byte keys at N = 64 and ketama at 100 nodes.
 *
 * Usage: bench_partition [-r rounds] [-c cpu] [-s strategy,...]   (-s: only these rows)
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <sn.h>

#include <libmemcached/memcached.h>

#include "bench_util.h"

#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL       (1u << 16) /* keys per pool: more than a branch predictor remembers */
#define KEY_STRIDE 16         /* bytes between the starts of consecutive pool keys */
#define MAX_ROUNDS 31
#define TARGET_SEC 0.01       /* each timed run lasts about this long */
#define LOAD_KEYS  (1u << 20) /* keys for max/mean and moved */
#define MANY_BATCH 64         /* keys per sn_partition_many call */
/* libmemcached's continuum holds 100 servers at most (MEMCACHED_CONTINUUM_SIZE; it asserts). */
#define LMC_MAX_NODES  100
#define LMC_CHECK_KEYS 4096 /* pool keys on which libmemcached must agree with libsn */

enum { S_HASH, S_JUMP, S_KETAMA, S_KETAMA_XXH3, S_RENDEZVOUS, S_RANGE, NSTRAT };
static const char *const strat_name[NSTRAT] = {"hash",        "jump",       "ketama",
                                               "ketama-xxh3", "rendezvous", "range"};
static const uint32_t bench_ns[] = {2, 64, 1024};
#define NNS (sizeof(bench_ns) / sizeof(bench_ns[0]))
static const size_t key_lens[] = {16, 100};
#define NLENS 2

struct config {
    int strat;
    uint32_t n;
    size_t klen;
    struct sn_partition *p;
    uint64_t iters;              /* lookups per timed run, calibrated */
    double ns[MAX_ROUNDS];       /* ours, per round */
    double peer[MAX_ROUNDS];     /* baseline, per round */
    double peer_inl[MAX_ROUNDS]; /* hash only: the baseline with XXH3 forced inline */
    double paper[MAX_ROUNDS];    /* jump only: the paper's loop, per round */
    double many[MAX_ROUNDS];     /* sn_partition_many in batches of MANY_BATCH, per round */
    double lmc[MAX_ROUNDS];      /* ketama only: libmemcached's memcached_generate_hash */
    memcached_st *lmc_st;        /* ketama only: the same nodes in libmemcached */
    double max_mean, moved;      /* moved < 0: not measured */
};

static uint8_t *pool;                             /* POOL * KEY_STRIDE + the longest key */
static struct sn_partition_key *pool_keys[NLENS]; /* the same keys, for sn_partition_many */
static volatile uint32_t sink;

static void fill_random(uint8_t *buf, size_t len, uint64_t *seed)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = bu_splitmix64(seed);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

/* Range over byte strings: N-1 evenly spaced 16-byte split points (the first 8 bytes are
 * (i+1) * 2^64 / N big-endian, the rest zero), so random keys spread evenly. */
static struct sn_partition *make_range(uint32_t n)
{
    uint8_t *s = calloc(n, 16);
    struct sn_partition_key *k = malloc((size_t)n * sizeof(*k));
    for (uint32_t i = 0; i + 1 < n; i++) {
        uint64_t v = (uint64_t)(((unsigned __int128)(i + 1) << 64) / n);
        for (int b = 0; b < 8; b++)
            s[16 * i + b] = (uint8_t)(v >> (56 - 8 * b));
        k[i] = (struct sn_partition_key){s + 16 * i, 16};
    }
    struct sn_partition_config c = {.kind = SN_PARTITION_RANGE, .n = n, .split_keys = k};
    struct sn_partition *p = NULL;
    char err[256];
    if (sn_partition_create(&c, err, sizeof(err), &p) < 0) {
        fprintf(stderr, "range n=%u: %s\n", n, err);
        exit(1);
    }
    free(s);
    free(k);
    return p;
}

static struct sn_partition *make(int strat, uint32_t n)
{
    if (strat == S_RANGE)
        return make_range(n);
    struct sn_partition *p = NULL;
    char err[256];
    if (sn_partition_from_string(strat_name[strat], n, err, sizeof(err), &p) < 0) {
        fprintf(stderr, "%s n=%u: %s\n", strat_name[strat], n, err);
        exit(1);
    }
    return p;
}

/* The timed loops. Both walk the same pool the same way and fold results into a sink. */
static double run_ours(struct sn_partition *p, const uint8_t *keys, size_t klen, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_thread_cpu_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += sn_partition(p, keys + (i & (POOL - 1)) * KEY_STRIDE, klen);
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)iters;
}

static double run_many(struct sn_partition *p, const struct sn_partition_key *keys, uint64_t iters)
{
    uint32_t out[MANY_BATCH], acc = 0;
    uint64_t batches = (iters + MANY_BATCH - 1) / MANY_BATCH;
    double t0 = bu_thread_cpu_s();
    for (uint64_t b = 0; b < batches; b++) {
        sn_partition_many(p, keys + (b * MANY_BATCH) % POOL, MANY_BATCH, out);
        acc += out[b % MANY_BATCH];
    }
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)(batches * MANY_BATCH);
}

/* The peer as the compiler builds it from the hand-written line: gcc -O2 calls all of
 * XXH3_64bits (too big to inline) and divides. */
static double run_peer(uint32_t n, const uint8_t *keys, size_t klen, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_thread_cpu_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += (uint32_t)(XXH3_64bits(keys + (i & (POOL - 1)) * KEY_STRIDE, klen) % n);
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)iters;
}

/* The same line with XXH3 forced inline (flatten): no call, and the compiler hoists the
 * length dispatch out of the loop, since every key of a run has the same length; no call
 * through a library can do that. The stricter peer, for hash. */
__attribute__((flatten)) static double run_peer_inlined(uint32_t n, const uint8_t *keys,
                                                        size_t klen, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_thread_cpu_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += (uint32_t)(XXH3_64bits(keys + (i & (POOL - 1)) * KEY_STRIDE, klen) % n);
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)iters;
}

/*
 * libmemcached with the nodes "node0".."node(N-1)" on port 11211, weight 1, under weighted
 * ketama: the same ring as `ketama:N`. Exits if it disagrees with libsn on any of the first
 * LMC_CHECK_KEYS pool keys, so
 * the two timings below are of the same function.
 */
static memcached_st *make_libmemcached(struct sn_partition *p, uint32_t n, const uint8_t *keys,
                                       size_t klen)
{
    memcached_st *m = memcached_create(NULL);
    if (!m ||
        memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS) {
        fprintf(stderr, "libmemcached set-up failed\n");
        exit(1);
    }
    for (uint32_t i = 0; i < n; i++) {
        char host[32];
        snprintf(host, sizeof host, "node%u", i);
        if (memcached_server_add_with_weight(m, host, 11211, 1) != MEMCACHED_SUCCESS) {
            fprintf(stderr, "libmemcached: adding %s failed\n", host);
            exit(1);
        }
    }
    for (int i = 0; i < LMC_CHECK_KEYS; i++) {
        const char *k = (const char *)keys + (size_t)i * KEY_STRIDE;
        uint32_t want = sn_partition(p, k, klen), got = memcached_generate_hash(m, k, klen);
        if (got != want) {
            fprintf(stderr, "libmemcached disagrees with ketama:%u on key %d: %u vs %u\n", n, i,
                    got, want);
            exit(1);
        }
    }
    return m;
}

static double run_libmemcached(memcached_st *m, const uint8_t *keys, size_t klen, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_thread_cpu_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += memcached_generate_hash(m, (const char *)keys + (i & (POOL - 1)) * KEY_STRIDE, klen);
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)iters;
}

/* Jump consistent hash exactly as in the paper (Lamping & Veach 2014, figure 1). */
static inline uint32_t jump_paper(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

/* Called like sn_partition (an out-of-line call per key), so the two rows compare the jump
 * loops rather than inlining: inlined into the timing loop, the paper's loop lets the CPU
 * overlap successive keys, which a call through the library cannot. */
__attribute__((noinline)) static uint32_t paper_partition(uint32_t n, const void *key, size_t len)
{
    return jump_paper(XXH3_64bits(key, len), n);
}

static double run_paper(uint32_t n, const uint8_t *keys, size_t klen, uint64_t iters)
{
    uint32_t acc = 0;
    double t0 = bu_thread_cpu_s();
    for (uint64_t i = 0; i < iters; i++)
        acc += paper_partition(n, keys + (i & (POOL - 1)) * KEY_STRIDE, klen);
    double t = bu_thread_cpu_s() - t0;
    sink += acc;
    return t * 1e9 / (double)iters;
}

static uint64_t calibrate(struct sn_partition *p, const uint8_t *keys, size_t klen)
{
    uint64_t iters = 1024;
    for (;;) {
        double t = run_ours(p, keys, klen, iters) * (double)iters * 1e-9;
        if (t >= TARGET_SEC / 4 || iters >= (1ull << 30))
            return (uint64_t)((double)iters * TARGET_SEC / (t > 0 ? t : 1e-9)) + 1;
        iters *= 4;
    }
}

/* max/mean over random 16-byte keys, and the fraction that moves when N grows by one. */
static void load_and_move(struct config *c)
{
    uint32_t n = c->n;
    uint32_t keys = c->strat == S_RENDEZVOUS && n >= 1024 ? LOAD_KEYS / 4 : LOAD_KEYS;
    uint32_t *count = calloc(n, sizeof(*count));
    struct sn_partition *grown = c->strat == S_RANGE ? NULL : make(c->strat, n + 1);
    uint64_t seed = 1, moved = 0;
    for (uint32_t i = 0; i < keys; i++) {
        uint64_t k[2] = {bu_splitmix64(&seed), bu_splitmix64(&seed)};
        uint32_t r = sn_partition(c->p, k, sizeof(k));
        count[r]++;
        if (grown)
            moved += r != sn_partition(grown, k, sizeof(k));
    }
    uint32_t mx = 0;
    for (uint32_t i = 0; i < n; i++)
        mx = count[i] > mx ? count[i] : mx;
    c->max_mean = mx / ((double)keys / n);
    c->moved = grown ? (double)moved / keys : -1;
    sn_partition_destroy(grown);
    free(count);
}

/* ketama (MD5 keys) against libmemcached on the same nodes and keys, in the same rounds. */
static void print_libmemcached(const struct config *cfg, int nc, int rounds)
{
    int any = 0;
    for (int i = 0; i < nc; i++)
        any |= cfg[i].lmc_st != NULL;
    if (!any)
        return;
    printf("ketama vs libmemcached %s (memcached_generate_hash, KETAMA_WEIGHTED, same nodes and "
           "keys; ratio = ours / libmemcached, median of per-round ratios):\n",
           memcached_lib_version());
    printf("%5s %5s %9s %9s %9s %7s %10s\n", "N", "key", "ns/key", "many_ns", "lmc_ns", "ratio",
           "many_ratio");
    for (int i = 0; i < nc; i++) {
        const struct config *c = &cfg[i];
        if (!c->lmc_st)
            continue;
        printf("%5u %5zu %9.2f %9.2f %9.2f %7.2f %10.2f\n", c->n, c->klen, bu_median(c->ns, rounds),
               bu_median(c->many, rounds), bu_median(c->lmc, rounds),
               bu_median_ratio(c->ns, c->lmc, rounds), bu_median_ratio(c->many, c->lmc, rounds));
    }
    printf("\n");
}

static double median_ratio(const struct config *c, int rounds)
{
    return bu_median_ratio(c->ns, c->peer, rounds);
}

static double median_ratio_inlined(const struct config *c, int rounds)
{
    return bu_median_ratio(c->ns, c->peer_inl, rounds);
}

/* True when strategy s is in the comma-separated list `only` (NULL: every strategy). */
static bool wanted(const char *only, int s)
{
    size_t len = strlen(strat_name[s]);
    for (const char *p = only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, strat_name[s], len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return true;
    return !only;
}

/* The configurations: every strategy x N x key length, then ketama at 100 nodes. */
static int build_configs(struct config *cfg, const char *only)
{
    int nc = 0;
    for (int s = 0; s < NSTRAT; s++)
        for (size_t i = 0; wanted(only, s) && i < NNS; i++)
            for (int l = 0; l < NLENS; l++)
                cfg[nc++] = (struct config){.strat = s, .n = bench_ns[i], .klen = key_lens[l]};
    for (int l = 0; l < NLENS; l++) {
        if (wanted(only, S_KETAMA))
            cfg[nc++] = (struct config){.strat = S_KETAMA, .n = 100, .klen = key_lens[l]};
        if (wanted(only, S_KETAMA_XXH3))
            cfg[nc++] = (struct config){.strat = S_KETAMA_XXH3, .n = 100, .klen = key_lens[l]};
    }
    for (int i = 0; i < nc; i++)
        cfg[i].p = make(cfg[i].strat, cfg[i].n);
    return nc;
}

static const struct config *find(const struct config *cfg, int nc, int s, uint32_t n, size_t klen)
{
    for (int i = 0; i < nc; i++)
        if (cfg[i].strat == s && cfg[i].n == n && cfg[i].klen == klen)
            return &cfg[i];
    return NULL;
}

/* Jump against the paper's loop, 16-byte keys. */
static void print_paper(const struct config *cfg, int nc, int rounds)
{
    if (!find(cfg, nc, S_JUMP, bench_ns[0], 16))
        return;
    printf("\njump vs the paper's loop (same XXH3 key hash, one out-of-line call per key, same "
           "rounds, 16-byte keys):\n");
    printf("%5s %9s %9s %7s\n", "N", "ns/key", "paper_ns", "ratio");
    for (size_t i = 0; i < NNS; i++) {
        const struct config *c = find(cfg, nc, S_JUMP, bench_ns[i], 16);
        printf("%5u %9.2f %9.2f %7.2f\n", c->n, bu_median(c->ns, rounds),
               bu_median(c->paper, rounds), bu_median_ratio(c->ns, c->paper, rounds));
    }
    printf("\n");
}

/* The worst of the hash rows' ratios to the hand-written `XXH3 % N` (every N, both lengths),
 * as the compiler builds it or (inlined) with XXH3 forced inline. */
static double hash_ratio_max(const struct config *cfg, int nc, int rounds, bool inlined)
{
    double worst = 0;
    for (int i = 0; i < nc; i++) {
        if (cfg[i].strat != S_HASH)
            continue;
        double r = inlined ? median_ratio_inlined(&cfg[i], rounds) : median_ratio(&cfg[i], rounds);
        worst = r > worst ? r : worst;
    }
    return worst;
}

/* hash against the peer with XXH3 forced inline, every row. */
static void print_hash_inlined(const struct config *cfg, int nc, int rounds)
{
    if (!find(cfg, nc, S_HASH, bench_ns[0], 16))
        return;
    printf("\nhash vs the hand-written line with XXH3 forced inline (length dispatch hoisted out "
           "of the loop; same rounds):\n");
    printf("%5s %5s %9s %9s %7s\n", "N", "key", "ns/key", "inl_ns", "ratio");
    for (int i = 0; i < nc; i++)
        if (cfg[i].strat == S_HASH)
            printf("%5u %5zu %9.2f %9.2f %7.2f\n", cfg[i].n, cfg[i].klen,
                   bu_median(cfg[i].ns, rounds), bu_median(cfg[i].peer_inl, rounds),
                   median_ratio_inlined(&cfg[i], rounds));
}

/* Appends " key=value" for configuration (s, n, 16-byte keys) when it ran. */
static void add_field(char *line, size_t size, const char *key, const struct config *cfg, int nc,
                      int s, uint32_t n, const double *(*pick)(const struct config *), int rounds)
{
    const struct config *c = find(cfg, nc, s, n, 16);
    size_t used = strlen(line);
    if (c && used < size)
        snprintf(line + used, size - used, " %s=%.2f", key, bu_median(pick(c), rounds));
}

static const double *pick_ns(const struct config *c)
{
    return c->ns;
}
static const double *pick_peer(const struct config *c)
{
    return c->peer;
}
static const double *pick_paper(const struct config *c)
{
    return c->paper;
}
static const double *pick_many(const struct config *c)
{
    return c->many;
}
static const double *pick_lmc(const struct config *c)
{
    return c->lmc;
}

/*
 * How many cycles a taken jump costs now: the bench's own state check. On the 2-vCPU Zen 5
 * VM of issue 17, some stretches of tens of seconds made libsn's lookups 1.5-1.9x slower and
 * the hand-written line 1.0-1.2x, in every process at once; in those a taken jump cost
 * 1.3-1.6 cycles instead of 0.6, adds ran at 3.4 a cycle instead of 4.5, and a chain of
 * dependent adds kept its speed: the signature of another hardware thread busy on the same
 * physical core (a co-tenant on the host; this VM's other vCPU busy does not do it).
 * Throughput-bound code (libsn's lookups: a call, an indirect jump and a return per key)
 * loses more than the line bound by its division. Ratios from such runs are flagged.
 * Cycles are counted with a chain of dependent register-to-register adds (one cycle each; an
 * add of an immediate is no clock: the Intel Xeon of 2026-12-06 ran such a chain at 0.06 ns
 * an add, far above its clock, folded before execution). Each pass of the jump
 * loop also takes its back edge (nine taken branches for the eight counted), so the figure
 * reads ~12% above a bare jump's cost; it is a state check calibrated against itself (0.6-0.68
 * with the core to itself, 1.25-1.6 shared, JUMP_CYCLES_SHARED between). Calibrated on AMD
 * only: that Intel Xeon took 6.4 cycles a taken jump with its core to itself, so elsewhere the
 * figure is printed without a verdict (jump_cycles_judged). 0 off x86-64.
 */
static double taken_jump_cycles(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    enum { ITERS = 1 << 20 };
    uint64_t x = 0, one = 1;
    double t0 = bu_thread_cpu_s();
    for (int i = 0; i < ITERS; i++)
        __asm__ volatile("add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\t"
                         "add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0"
                         : "+r"(x)
                         : "r"(one));
    double cycle = (bu_thread_cpu_s() - t0) / (8.0 * ITERS);
    sink += (uint32_t)x;
    t0 = bu_thread_cpu_s();
    for (int i = 0; i < ITERS; i++)
        __asm__ volatile("jmp 1f\n1: jmp 2f\n2: jmp 3f\n3: jmp 4f\n4: jmp 5f\n5: jmp 6f\n"
                         "6: jmp 7f\n7: jmp 8f\n8:" ::
                             : "memory");
    return (bu_thread_cpu_s() - t0) / (8.0 * ITERS) / cycle;
#else
    return 0;
#endif
}

/* Above this many cycles a taken jump shares its core (see taken_jump_cycles). */
#define JUMP_CYCLES_SHARED 1.0

/* Whether taken_jump_cycles' threshold holds on this CPU (it was calibrated on AMD). */
static bool jump_cycles_judged(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_is("amd");
#else
    return false;
#endif
}

/*
 * The goals of this round (issue 17) and the summary line: 16-byte keys at N = 64, jump at
 * N = 1024, ketama at 100 nodes; only the strategies that ran (-s).
 */
static void print_summary(const struct config *cfg, int nc, int rounds, double jmp_cycles)
{
    const struct config *h = find(cfg, nc, S_HASH, 64, 16), *j1k = find(cfg, nc, S_JUMP, 1024, 16),
                        *k = find(cfg, nc, S_KETAMA, 100, 16);
    printf("targets:");
    if (h) {
        double worst = hash_ratio_max(cfg, nc, rounds, false);
        printf(" hash <= 1.1x the hand-written XXH3 %% N in every row: %s (worst %.3f; %.3f "
               "against it forced inline);",
               worst <= 1.1 ? "met" : "MISSED", worst, hash_ratio_max(cfg, nc, rounds, true));
    }
    if (j1k) {
        double ns = bu_median(j1k->ns, rounds);
        printf(" jump at N=1024 <= 15 ns one key at a time: %s (%.2f);",
               ns <= 15 ? "met" : "MISSED", ns);
    }
    if (k) {
        double one = bu_median(k->ns, rounds), many = bu_median(k->many, rounds);
        printf(" ketama < 60 ns: one key at a time %s (%.2f), batched %s (%.2f);",
               one < 60 ? "met" : "MISSED", one, many < 60 ? "met" : "MISSED", many);
    }
    printf("\n");

    char line[1024] = "summary:";
    add_field(line, sizeof line, "hash_ns", cfg, nc, S_HASH, 64, pick_ns, rounds);
    add_field(line, sizeof line, "jump_ns", cfg, nc, S_JUMP, 64, pick_ns, rounds);
    add_field(line, sizeof line, "ketama_ns", cfg, nc, S_KETAMA, 100, pick_ns, rounds);
    add_field(line, sizeof line, "rendezvous_ns", cfg, nc, S_RENDEZVOUS, 64, pick_ns, rounds);
    add_field(line, sizeof line, "range_ns", cfg, nc, S_RANGE, 64, pick_ns, rounds);
    add_field(line, sizeof line, "peer_mod_ns", cfg, nc, S_HASH, 64, pick_peer, rounds);
    if (h) {
        size_t used = strlen(line);
        snprintf(line + used, sizeof line - used,
                 " hash_ratio=%.3f hash_ratio_max=%.3f hash_ratio_inlined=%.3f "
                 "hash_ratio_inlined_max=%.3f",
                 median_ratio(h, rounds), hash_ratio_max(cfg, nc, rounds, false),
                 median_ratio_inlined(h, rounds), hash_ratio_max(cfg, nc, rounds, true));
    }
    add_field(line, sizeof line, "jump_1024_ns", cfg, nc, S_JUMP, 1024, pick_ns, rounds);
    add_field(line, sizeof line, "jump_paper_1024_ns", cfg, nc, S_JUMP, 1024, pick_paper, rounds);
    add_field(line, sizeof line, "ketama_xxh3_ns", cfg, nc, S_KETAMA_XXH3, 100, pick_ns, rounds);
    add_field(line, sizeof line, "ketama_many_ns", cfg, nc, S_KETAMA, 100, pick_many, rounds);
    add_field(line, sizeof line, "jump_many_1024_ns", cfg, nc, S_JUMP, 1024, pick_many, rounds);
    add_field(line, sizeof line, "ketama_libmemcached_ns", cfg, nc, S_KETAMA, 100, pick_lmc,
              rounds);
    printf("%s jmp_cycles=%.2f rounds=%d\n", line, jmp_cycles, rounds);
}

int main(int argc, char **argv)
{
    int rounds = 7, cpu = -1, opt;
    const char *only = NULL;
    while ((opt = getopt(argc, argv, "r:c:s:")) != -1) {
        if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'c')
            cpu = atoi(optarg);
        else if (opt == 's')
            only = optarg;
        else {
            fprintf(stderr, "usage: %s [-r rounds] [-c cpu] [-s strategy,...]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "rounds must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    if (cpu < 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu = ncpu > 1 ? (int)ncpu - 1 : 0;
    }
    bu_pin_self_or_exit(cpu);

    uint64_t seed = 7;
    size_t pool_bytes = (size_t)POOL * KEY_STRIDE + key_lens[NLENS - 1];
    pool = malloc(pool_bytes);
    if (!pool) {
        perror("malloc");
        return 1;
    }
    fill_random(pool, pool_bytes, &seed);
    for (int l = 0; l < NLENS; l++) {
        pool_keys[l] = malloc(POOL * sizeof(*pool_keys[l]));
        if (!pool_keys[l]) {
            perror("malloc");
            return 1;
        }
        for (size_t i = 0; i < POOL; i++)
            pool_keys[l][i] = (struct sn_partition_key){pool + i * KEY_STRIDE, key_lens[l]};
    }
    static struct config cfg[NSTRAT * NNS * NLENS + 4];
    int nc = build_configs(cfg, only);
    if (nc == 0) {
        fprintf(stderr, "-s %s: no such strategy\n", only);
        return 2;
    }
    const uint8_t *keys = pool;
    for (int i = 0; i < nc; i++) {
        cfg[i].iters = calibrate(cfg[i].p, keys, cfg[i].klen);
        if (cfg[i].strat == S_KETAMA && cfg[i].n <= LMC_MAX_NODES)
            cfg[i].lmc_st = make_libmemcached(cfg[i].p, cfg[i].n, keys, cfg[i].klen);
        if (cfg[i].klen == 16)
            load_and_move(&cfg[i]);
    }
    printf("bench_partition: pinned to cpu %d, %d rounds, %u keys per pool, ~%.0f ms per run\n",
           cpu, rounds, POOL, TARGET_SEC * 1e3);
    double jmp_cycles = taken_jump_cycles();

    for (int r = 0; r < rounds; r++) {
        /* Alternate which of the pair goes first, so neither always runs on a warm cache. */
        for (int i = 0; i < nc; i++) {
            struct config *c = &cfg[i];
            if (r % 2) {
                c->peer[r] = run_peer(c->n, keys, c->klen, c->iters);
                c->ns[r] = run_ours(c->p, keys, c->klen, c->iters);
            } else {
                c->ns[r] = run_ours(c->p, keys, c->klen, c->iters);
                c->peer[r] = run_peer(c->n, keys, c->klen, c->iters);
            }
            if (c->strat == S_JUMP)
                c->paper[r] = run_paper(c->n, keys, c->klen, c->iters);
            if (c->strat == S_HASH)
                c->peer_inl[r] = run_peer_inlined(c->n, keys, c->klen, c->iters);
            c->many[r] = run_many(c->p, pool_keys[c->klen == 16 ? 0 : 1], c->iters);
            if (c->lmc_st)
                c->lmc[r] = run_libmemcached(c->lmc_st, keys, c->klen, c->iters);
        }
    }

    printf("%-12s %5s %5s %9s %9s %9s %7s %9s %8s\n", "strategy", "N", "key", "ns/key", "many_ns",
           "peer_ns", "ratio", "max/mean", "moved");
    for (int i = 0; i < nc; i++) {
        const struct config *c = &cfg[i];
        char mm[16] = "-", mv[16] = "-";
        if (c->klen == 16)
            snprintf(mm, sizeof(mm), "%.3f", c->max_mean);
        if (c->klen == 16 && c->moved >= 0)
            snprintf(mv, sizeof(mv), "%.4f", c->moved);
        printf("%-12s %5u %5zu %9.2f %9.2f %9.2f %7.2f %9s %8s\n", strat_name[c->strat], c->n,
               c->klen, bu_median(c->ns, rounds), bu_median(c->many, rounds),
               bu_median(c->peer, rounds), median_ratio(c, rounds), mm, mv);
    }
    printf("(many_ns: per key through sn_partition_many, %d keys per call; peer: XXH3_64bits(key) "
           "%% N; ratio = ours / peer, median of per-round ratios; moved for `%% N` would be "
           "N/(N+1))\n",
           MANY_BATCH);

    print_hash_inlined(cfg, nc, rounds);
    print_paper(cfg, nc, rounds);
    print_libmemcached(cfg, nc, rounds);
    double jmp_after = taken_jump_cycles();
    jmp_cycles = jmp_after > jmp_cycles ? jmp_after : jmp_cycles;
    printf("machine: a taken jump cost %.2f cycles (the worse of before and after the rounds; "
           "0.6 with the core to itself on AMD)%s\n",
           jmp_cycles,
           !jump_cycles_judged() ? " (no verdict: the check is calibrated on AMD only)"
           : jmp_cycles > JUMP_CYCLES_SHARED
               ? ": SHARED CORE, the ratios of this run are not comparable (a busy SMT sibling "
                 "slows libsn's throughput-bound lookups more than the peers)"
               : "");
    print_summary(cfg, nc, rounds, jmp_cycles);

    for (int i = 0; i < nc; i++) {
        sn_partition_destroy(cfg[i].p);
        if (cfg[i].lmc_st)
            memcached_free(cfg[i].lmc_st);
    }
    for (int l = 0; l < NLENS; l++)
        free(pool_keys[l]);
    free(pool);
    return 0;
}
