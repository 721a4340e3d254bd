/*
 * bench_ring: the SPSC ring against its peers, on two pinned threads (CPU 0 and CPU 1).
 *
 *   (a) raw cache-line ping-pong: two atomics on separate lines, spinning; its round trip is
 *       the latency limit of this machine;
 *   (b) our ring, one-way throughput for 8, 16 and 32-byte messages in three modes: per
 *       message (sn_ring_push / sn_ring_pop), batched by staging (sn_ring_stage x batch +
 *       one sn_ring_flush; sn_ring_pop_n of batch) and batched by array (sn_ring_push_n /
 *       sn_ring_pop_n of batch); batch is 256 messages unless -b says otherwise;
 *   (c) our round trip: a 16-byte message sent through one ring and bounced back through a
 *       second ring, p50 and p99;
 *   (d) ck_ring (Concurrency Kit) SPSC: throughput and the same round trip. ck_ring's plain
 *       API carries pointers, so for 8 bytes it uses ck_ring_enqueue_spsc/dequeue_spsc with
 *       the value in the pointer, and for 16 and 32 bytes its array-of-records variant
 *       (CK_RING_PROTOTYPE: ck_ring_enqueue_spsc_<rec>/ck_ring_dequeue_spsc_<rec>), which
 *       copies records like our ring does. That is the fairest match: same bytes moved per
 *       message, no allocation, no indirection. ck_ring has no batched SPSC publish.
 *
 * The machine is shared and its core-to-core latency drifts, so every figure is measured in
 * each of several rounds, interleaved (the order alternates per round), and the ratios are
 * the median of the per-round ratios. Round trips are timed per sample with the TSC
 * (calibrated against CLOCK_MONOTONIC); all three round trips pay the same timer overhead.
 *
 * A thread that finds its ring empty (consumer) or full (producer) executes one PAUSE before
 * retrying in the throughput runs (-P: spin without it), the same for every implementation;
 * the round-trip runs always spin without PAUSE, as the ping-pong does.
 *
 * Usage: bench_ring [-r rounds] [-n messages] [-s rtt_samples] [-b batch] [-c capacity] [-P]
 */
#include <sn/ring.h>

#include <ck_ring.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "bench_util.h"
#define MAX_ROUNDS 31
#define RTT_CAP    64 /* slots, both rings, round-trip runs */
#define MAX_BATCH  1024
#define WARMUP     2000 /* round trips before sampling */
#define NSIZES     3

static const uint32_t sizes[NSIZES] = {8, 16, 32};

static uint64_t n_msgs = 10000000;  /* per throughput run */
static uint32_t n_samples = 100000; /* per round-trip run */
static int n_rounds = 7;
static uint32_t batch = 256;     /* messages per flush, push_n and pop_n in the batched modes */
static uint32_t tput_cap = 4096; /* slots, every ring in the throughput runs */
static double tsc_per_ns;

/* ---------- timing and threads ---------- */

/* Serialised TSC read: earlier instructions finish before, later ones start after. */
static inline uint64_t tsc(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static void calibrate_tsc(void)
{
    double t0 = bu_now_s();
    uint64_t c0 = tsc();
    while (bu_now_s() - t0 < 0.1)
        ;
    uint64_t c1 = tsc();
    tsc_per_ns = (double)(c1 - c0) / ((bu_now_s() - t0) * 1e9);
}

/* Both threads of a pair spin here so the timed work starts together. */
struct gate {
    _Atomic int arrived;
};

static void gate_wait(struct gate *g)
{
    atomic_fetch_add(&g->arrived, 1);
    while (atomic_load(&g->arrived) < 2)
        ;
}

static int pin_failed;

/* Runs fa on CPU 0 and fb on CPU 1 with the same argument and waits for both. */
static void run_pair(void *(*fa)(void *), void *(*fb)(void *), void *arg)
{
    pthread_t t[2];
    void *(*fn[2])(void *) = {fa, fb};
    for (int i = 0; i < 2; i++) {
        pthread_attr_t attr;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(i, &set);
        pthread_attr_init(&attr);
        if (pthread_attr_setaffinity_np(&attr, sizeof set, &set) != 0)
            pin_failed = 1;
        if (pthread_create(&t[i], &attr, fn[i], arg) != 0) {
            perror("pthread_create");
            exit(1);
        }
        pthread_attr_destroy(&attr);
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
}

static void *xalloc(size_t size)
{
    void *p = aligned_alloc(64, (size + 63) & ~(size_t)63);
    if (!p) {
        perror("aligned_alloc");
        exit(1);
    }
    memset(p, 0, size);
    return p;
}

/* ---------- ck_ring record types ---------- */

struct rec16 {
    uint64_t w[2];
};
struct rec32 {
    uint64_t w[4];
};
CK_RING_PROTOTYPE(rec16, rec16)
CK_RING_PROTOTYPE(rec32, rec32)

/* ---------- throughput ---------- */

enum impl { SN_PERMSG, SN_STAGE, SN_PUSHN, CK_RING, N_IMPLS };
static const char *impl_name[N_IMPLS] = {"sn push/pop", "sn stage+flush/pop_n", "sn push_n/pop_n",
                                         "ck_ring"};

struct tput {
    enum impl impl;
    uint32_t size;
    struct sn_ring *ring;
    ck_ring_t *ck;
    void *ck_buf;
    struct gate gate;
    double t0, t1;
    uint64_t sum;
};

/*
 * Messages come from a small pre-built table (L1-resident), packed at the run's message size
 * and the same for every implementation, so the producer loop measures the ring rather than
 * message construction (building a message in a stack buffer right before copying it stalls
 * store forwarding). Word 0 of message i is i % SRC_MSGS, the other words derive from it;
 * the consumer sums word 0 to prove nothing was lost.
 */
#define SRC_MSGS 512
static uint64_t src_words[SRC_MSGS * 4];

static void init_src(uint32_t size)
{
    uint32_t words = size / 8;
    for (uint64_t j = 0; j < SRC_MSGS; j++)
        for (uint32_t w = 0; w < words; w++)
            src_words[j * words + w] = j * (w + 1);
}

static inline const uint64_t *src_msg(uint64_t i, uint32_t size)
{
    return &src_words[(i % SRC_MSGS) * (size / 8)];
}

static uint64_t expected_sum(void)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n_msgs; i++)
        sum += i % SRC_MSGS;
    return sum;
}

/* What a consumer does when it finds the ring empty (and a producer when full). */
static int spin_pause = 1;

static inline void on_empty(void)
{
    if (spin_pause)
        _mm_pause();
}

static void tput_produce_sn(struct tput *b)
{
    struct sn_ring *r = b->ring;
    uint32_t size = b->size;
    for (uint64_t i = 0; i < n_msgs;) {
        uint64_t start = i;
        if (b->impl == SN_PERMSG) {
            i += sn_ring_push(r, src_msg(i, size)) == 0;
        } else if (b->impl == SN_STAGE) {
            uint64_t end = i + batch < n_msgs ? i + batch : n_msgs;
            for (; i < end; i++)
                if (sn_ring_stage(r, src_msg(i, size)) != 0)
                    break;
            sn_ring_flush(r);
        } else {
            /* A batch never runs past the end of the source table. */
            uint64_t k = SRC_MSGS - i % SRC_MSGS;
            k = k < batch ? k : batch;
            k = k < n_msgs - i ? k : n_msgs - i;
            int rc = sn_ring_push_n(r, src_msg(i, size), (uint32_t)k);
            i += rc > 0 ? (uint64_t)rc : 0;
        }
        if (i == start)
            on_empty();
    }
}

static void tput_produce_ck(struct tput *b)
{
    for (uint64_t i = 0; i < n_msgs;) {
        bool ok;
        const uint64_t *m = src_msg(i, b->size);
        if (b->size == 8)
            ok = ck_ring_enqueue_spsc(b->ck, b->ck_buf, (void *)(uintptr_t)m[0]);
        else if (b->size == 16)
            ok = ck_ring_enqueue_spsc_rec16(b->ck, b->ck_buf, (struct rec16 *)m);
        else
            ok = ck_ring_enqueue_spsc_rec32(b->ck, b->ck_buf, (struct rec32 *)m);
        if (ok)
            i++;
        else
            on_empty();
    }
}

static void *tput_producer(void *arg)
{
    struct tput *b = arg;
    gate_wait(&b->gate);
    if (b->impl == CK_RING)
        tput_produce_ck(b);
    else
        tput_produce_sn(b);
    return NULL;
}

static uint64_t tput_consume_sn(struct tput *b)
{
    struct sn_ring *r = b->ring;
    uint64_t sum = 0, got = 0;
    uint64_t buf[MAX_BATCH * 4];
    if (b->impl == SN_PERMSG) {
        while (got < n_msgs) {
            if (sn_ring_pop(r, buf) == 0) {
                sum += buf[0];
                got++;
            } else {
                on_empty();
            }
        }
        return sum;
    }
    uint32_t words = b->size / 8;
    while (got < n_msgs) {
        int k = sn_ring_pop_n(r, buf, batch);
        if (k <= 0) {
            on_empty();
            continue;
        }
        for (int j = 0; j < k; j++)
            sum += buf[(uint32_t)j * words];
        got += (uint64_t)k;
    }
    return sum;
}

static uint64_t tput_consume_ck(struct tput *b)
{
    uint64_t sum = 0, got = 0, m[4];
    while (got < n_msgs) {
        bool ok;
        if (b->size == 8) {
            void *p = NULL;
            ok = ck_ring_dequeue_spsc(b->ck, b->ck_buf, &p);
            m[0] = (uintptr_t)p;
        } else if (b->size == 16) {
            ok = ck_ring_dequeue_spsc_rec16(b->ck, b->ck_buf, (struct rec16 *)m);
        } else {
            ok = ck_ring_dequeue_spsc_rec32(b->ck, b->ck_buf, (struct rec32 *)m);
        }
        if (ok) {
            sum += m[0];
            got++;
        } else {
            on_empty();
        }
    }
    return sum;
}

static void *tput_consumer(void *arg)
{
    struct tput *b = arg;
    gate_wait(&b->gate);
    b->t0 = bu_now_s();
    b->sum = b->impl == CK_RING ? tput_consume_ck(b) : tput_consume_sn(b);
    b->t1 = bu_now_s();
    return NULL;
}

/* One throughput run; returns messages per second. Aborts if any message went missing. */
static double run_tput(enum impl impl, uint32_t size, uint64_t expected)
{
    struct tput b = {.impl = impl, .size = size};
    init_src(size);
    if (impl == CK_RING) {
        b.ck = xalloc(sizeof *b.ck);
        b.ck_buf = xalloc((size_t)tput_cap * size);
        ck_ring_init(b.ck, tput_cap);
    } else if (sn_ring_create(tput_cap, size, NULL, &b.ring) != 0) {
        fprintf(stderr, "sn_ring_create failed\n");
        exit(1);
    }
    run_pair(tput_producer, tput_consumer, &b);
    if (b.sum != expected) {
        fprintf(stderr, "%s %u B: checksum mismatch\n", impl_name[impl], size);
        exit(1);
    }
    sn_ring_destroy(b.ring);
    free(b.ck);
    free(b.ck_buf);
    return (double)n_msgs / (b.t1 - b.t0);
}

/* ---------- round trips ---------- */

enum rtt_kind { RTT_PINGPONG, RTT_SN, RTT_CK, N_RTTS };
static const char *rtt_name[N_RTTS] = {"ping-pong (raw lines)", "sn ring", "ck_ring"};

struct rtt {
    enum rtt_kind kind;
    SN_CACHE_ALIGNED _Atomic uint64_t ping;
    SN_CACHE_ALIGNED _Atomic uint64_t pong;
    /* Read-only while the threads run. */
    SN_CACHE_ALIGNED struct sn_ring *fwd, *back;
    ck_ring_t *ck_fwd, *ck_back;
    struct rec16 *ck_fwd_buf, *ck_back_buf;
    uint64_t *lat;
    /* Written only before and after the timed loop. */
    SN_CACHE_ALIGNED struct gate gate;
    uint64_t bad;
};

/*
 * One round trip from the initiator's side; returns the TSC cycles it took and counts a
 * corrupted reply in *bad (a local: the shared struct stays read-only during the run, so the
 * benchmark itself adds no false sharing).
 */
static uint64_t rtt_once(const struct rtt *b, uint64_t i, uint64_t *bad)
{
    struct rec16 m = {{i, ~i}}, got;
    uint64_t t0 = tsc();
    switch (b->kind) {
    case RTT_PINGPONG:
        atomic_store_explicit(&b->ping, i, memory_order_release);
        while (atomic_load_explicit(&b->pong, memory_order_acquire) != i)
            ;
        got = m;
        break;
    case RTT_SN:
        while (sn_ring_push(b->fwd, &m) != 0)
            ;
        while (sn_ring_pop(b->back, &got) != 0)
            ;
        break;
    default:
        while (!ck_ring_enqueue_spsc_rec16(b->ck_fwd, b->ck_fwd_buf, &m))
            ;
        while (!ck_ring_dequeue_spsc_rec16(b->ck_back, b->ck_back_buf, &got))
            ;
        break;
    }
    uint64_t t1 = tsc();
    *bad += got.w[0] != i || got.w[1] != ~i;
    return t1 - t0;
}

static void *rtt_initiator(void *arg)
{
    struct rtt *b = arg;
    uint64_t bad = 0, *lat = b->lat;
    gate_wait(&b->gate);
    for (uint64_t i = 1; i <= WARMUP + n_samples; i++) {
        uint64_t c = rtt_once(b, i, &bad);
        if (i > WARMUP)
            lat[i - 1 - WARMUP] = c;
    }
    b->bad = bad;
    return NULL;
}

static void *rtt_reflector(void *arg)
{
    struct rtt *b = arg;
    struct rec16 m;
    gate_wait(&b->gate);
    for (uint64_t i = 1; i <= WARMUP + n_samples; i++) {
        switch (b->kind) {
        case RTT_PINGPONG:
            while (atomic_load_explicit(&b->ping, memory_order_acquire) != i)
                ;
            atomic_store_explicit(&b->pong, i, memory_order_release);
            break;
        case RTT_SN:
            while (sn_ring_pop(b->fwd, &m) != 0)
                ;
            while (sn_ring_push(b->back, &m) != 0)
                ;
            break;
        default:
            while (!ck_ring_dequeue_spsc_rec16(b->ck_fwd, b->ck_fwd_buf, &m))
                ;
            while (!ck_ring_enqueue_spsc_rec16(b->ck_back, b->ck_back_buf, &m))
                ;
            break;
        }
    }
    return NULL;
}

/* One round-trip run: stores p50 and p99 in nanoseconds. */
static void run_rtt(enum rtt_kind kind, double *p50, double *p99)
{
    struct rtt *b = xalloc(sizeof *b);
    b->kind = kind;
    b->lat = xalloc(sizeof *b->lat * n_samples);
    if (kind == RTT_SN && (sn_ring_create(RTT_CAP, 16, NULL, &b->fwd) != 0 ||
                           sn_ring_create(RTT_CAP, 16, NULL, &b->back) != 0)) {
        fprintf(stderr, "sn_ring_create failed\n");
        exit(1);
    }
    if (kind == RTT_CK) {
        b->ck_fwd = xalloc(sizeof *b->ck_fwd);
        b->ck_back = xalloc(sizeof *b->ck_back);
        b->ck_fwd_buf = xalloc(sizeof(struct rec16) * RTT_CAP);
        b->ck_back_buf = xalloc(sizeof(struct rec16) * RTT_CAP);
        ck_ring_init(b->ck_fwd, RTT_CAP);
        ck_ring_init(b->ck_back, RTT_CAP);
    }
    run_pair(rtt_initiator, rtt_reflector, b);
    if (b->bad) {
        fprintf(stderr, "%s: %llu corrupted round trips\n", rtt_name[kind],
                (unsigned long long)b->bad);
        exit(1);
    }
    qsort(b->lat, n_samples, sizeof *b->lat, bu_cmp_u64);
    *p50 = (double)b->lat[n_samples / 2] / tsc_per_ns;
    *p99 = (double)b->lat[(uint64_t)n_samples * 99 / 100] / tsc_per_ns;
    sn_ring_destroy(b->fwd);
    sn_ring_destroy(b->back);
    free(b->ck_fwd);
    free(b->ck_back);
    free(b->ck_fwd_buf);
    free(b->ck_back_buf);
    free(b->lat);
    free(b);
}

/* ---------- rounds and report ---------- */

struct round {
    double mps[N_IMPLS][NSIZES];
    double p50[N_RTTS], p99[N_RTTS];
};

static struct round rounds[MAX_ROUNDS];

/* Median, minimum and maximum over rounds of f(round). */
static double stat(double (*f)(const struct round *, int, int), int i, int j, double *lo,
                   double *hi)
{
    double v[MAX_ROUNDS];
    for (int r = 0; r < n_rounds; r++)
        v[r] = f(&rounds[r], i, j);
    return bu_median_range(v, n_rounds, lo, hi);
}

static double f_mps(const struct round *r, int impl, int s)
{
    return r->mps[impl][s];
}
static double f_p50(const struct round *r, int k, int unused)
{
    (void)unused;
    return r->p50[k];
}
static double f_p99(const struct round *r, int k, int unused)
{
    (void)unused;
    return r->p99[k];
}
/* Our best mode for size index s. */
static double best_sn(const struct round *r, int s)
{
    double best = 0;
    for (int impl = 0; impl < CK_RING; impl++)
        best = r->mps[impl][s] > best ? r->mps[impl][s] : best;
    return best;
}
static double f_best(const struct round *r, int s, int unused)
{
    (void)unused;
    return best_sn(r, s);
}
static double f_ratio_ck(const struct round *r, int impl, int s)
{
    double ours = impl < 0 ? best_sn(r, s) : r->mps[impl][s];
    return ours / r->mps[CK_RING][s];
}
static double f_ratio_rtt(const struct round *r, int k, int ref)
{
    return r->p50[k] / r->p50[ref];
}

static void measure_round(int idx, uint64_t expected)
{
    struct round *r = &rounds[idx];
    /* Alternate the order so neither side always runs first in a round. */
    for (int step = 0; step < 2; step++) {
        int ours_now = (step == 0) == (idx % 2 == 0);
        if (ours_now) {
            run_rtt(RTT_PINGPONG, &r->p50[RTT_PINGPONG], &r->p99[RTT_PINGPONG]);
            run_rtt(RTT_SN, &r->p50[RTT_SN], &r->p99[RTT_SN]);
            for (int s = 0; s < NSIZES; s++)
                for (int impl = 0; impl < CK_RING; impl++)
                    r->mps[impl][s] = run_tput((enum impl)impl, sizes[s], expected);
        } else {
            run_rtt(RTT_CK, &r->p50[RTT_CK], &r->p99[RTT_CK]);
            for (int s = 0; s < NSIZES; s++)
                r->mps[CK_RING][s] = run_tput(CK_RING, sizes[s], expected);
        }
    }
    fprintf(stderr,
            "round %d/%d: 16 B: sn %.1f / %.1f / %.1f Mmsg/s (push/pop, stage+flush, push_n), "
            "ck %.1f Mmsg/s; rtt p50 sn %.0f ns, ck %.0f ns, ping-pong %.0f ns\n",
            idx + 1, n_rounds, r->mps[SN_PERMSG][1] / 1e6, r->mps[SN_STAGE][1] / 1e6,
            r->mps[SN_PUSHN][1] / 1e6, r->mps[CK_RING][1] / 1e6, r->p50[RTT_SN], r->p50[RTT_CK],
            r->p50[RTT_PINGPONG]);
}

static void report(double secs)
{
    double lo, hi;
    printf("\nbench_ring: %d rounds in %.1f s, %llu messages per throughput run, %u round trips "
           "per latency run\n",
           n_rounds, secs, (unsigned long long)n_msgs, n_samples);
    printf("rings: %u slots (throughput), %u slots (round trip); batch %u; CPU 0 -> CPU 1%s\n",
           tput_cap, RTT_CAP, batch, pin_failed ? " (PINNING FAILED)" : "");
    printf("ck_ring: 8 B = pointer API (ck_ring_enqueue_spsc), 16/32 B = record API "
           "(CK_RING_PROTOTYPE)\n\n");
    printf("%-24s %5s %12s %12s %12s\n", "throughput (Mmsg/s)", "size", "median", "min", "max");
    for (int impl = 0; impl < N_IMPLS; impl++)
        for (int s = 0; s < NSIZES; s++) {
            double m = stat(f_mps, impl, s, &lo, &hi);
            printf("%-24s %4uB %12.2f %12.2f %12.2f\n", impl_name[impl], sizes[s], m / 1e6,
                   lo / 1e6, hi / 1e6);
        }
    printf("\n%-24s %5s %12s %12s %12s\n", "ratio vs ck_ring", "size", "median", "min", "max");
    for (int impl = -1; impl < CK_RING; impl++)
        for (int s = 0; s < NSIZES; s++) {
            double m = stat(f_ratio_ck, impl, s, &lo, &hi);
            printf("%-24s %4uB %12.2f %12.2f %12.2f\n", impl < 0 ? "sn best mode" : impl_name[impl],
                   sizes[s], m, lo, hi);
        }
    printf("\n%-24s %12s %12s %12s %12s\n", "round trip, 16 B (ns)", "p50 median", "p50 min",
           "p50 max", "p99 median");
    for (int k = 0; k < N_RTTS; k++) {
        double m = stat(f_p50, k, 0, &lo, &hi);
        printf("%-24s %12.0f %12.0f %12.0f %12.0f\n", rtt_name[k], m, lo, hi,
               stat(f_p99, k, 0, NULL, NULL));
    }
    double rtt_pp = stat(f_ratio_rtt, RTT_SN, RTT_PINGPONG, &lo, &hi);
    printf("\nsn rtt / ping-pong (p50)   median %.2f  min %.2f  max %.2f\n", rtt_pp, lo, hi);
    double rtt_ck = stat(f_ratio_rtt, RTT_SN, RTT_CK, &lo, &hi);
    printf("sn rtt / ck_ring rtt (p50) median %.2f  min %.2f  max %.2f\n", rtt_ck, lo, hi);
    int wins[N_IMPLS] = {0}, top = 0;
    for (int r = 0; r < n_rounds; r++)
        for (int impl = 0; impl < CK_RING; impl++)
            if (rounds[r].mps[impl][1] == best_sn(&rounds[r], 1)) {
                wins[impl]++;
                break;
            }
    for (int impl = 1; impl < CK_RING; impl++)
        top = wins[impl] > wins[top] ? impl : top;
    printf("headline: 16 B messages; ring_mps = median over rounds of our best mode in each "
           "round (best in %d of %d rounds: %s, batch %u); ck_mps = ck_ring records; ratios = "
           "median of per-round ratios\n",
           wins[top], n_rounds, impl_name[top], batch);
    printf("summary: ring_mps=%.0f ck_mps=%.0f ratio_vs_ck=%.2f rtt_ns=%.0f pingpong_ns=%.0f "
           "rtt_vs_pingpong=%.2f\n",
           stat(f_best, 1, 0, NULL, NULL), stat(f_mps, CK_RING, 1, NULL, NULL),
           stat(f_ratio_ck, -1, 1, NULL, NULL), stat(f_p50, RTT_SN, 0, NULL, NULL),
           stat(f_p50, RTT_PINGPONG, 0, NULL, NULL), rtt_pp);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "r:n:s:b:c:P")) != -1) {
        if (opt == 'c')
            tput_cap = (uint32_t)strtoul(optarg, NULL, 10);
        else if (opt == 'b')
            batch = (uint32_t)strtoul(optarg, NULL, 10);
        else if (opt == 'P')
            spin_pause = 0;
        else if (opt == 'r')
            n_rounds = atoi(optarg);
        else if (opt == 'n')
            n_msgs = strtoull(optarg, NULL, 10);
        else if (opt == 's')
            n_samples = (uint32_t)strtoul(optarg, NULL, 10);
        else {
            fprintf(stderr,
                    "usage: %s [-r rounds] [-n messages] [-s rtt_samples] [-b batch] [-c capacity] "
                    "[-P]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n_rounds < 1 || n_rounds > MAX_ROUNDS || n_msgs < 1 || n_samples < 100 || batch < 1 ||
        batch > MAX_BATCH || tput_cap < 2 || (tput_cap & (tput_cap - 1)) || tput_cap > (1u << 24)) {
        fprintf(stderr,
                "bench_ring: rounds 1..%d, messages >= 1, samples >= 100, batch 1..%d, "
                "capacity a power of two from 2 to 2^24\n",
                MAX_ROUNDS, MAX_BATCH);
        return 2;
    }
    calibrate_tsc();
    uint64_t expected = expected_sum();
    double t0 = bu_now_s();
    for (int i = 0; i < n_rounds; i++)
        measure_round(i, expected);
    report(bu_now_s() - t0);
    return 0;
}
