/*
 * bench_wake: how long a sleeping reactor core takes to wake, against the limit of a raw
 * eventfd wake between two plain threads. Two threads pinned to two cores (hwloc):
 *
 *   (a) msgring:        the sender owns an io_uring and posts IORING_OP_MSG_RING to the
 *                       target's ring (sn__wake_from_reactor + submit); the target sleeps in
 *                       io_uring_wait_cqe on its own SINGLE_ISSUER|DEFER_TASKRUN ring;
 *   (b) uring_eventfd:  libsn's fallback: the sender writes the target's eventfd
 *                       (sn__wake_from_thread); the target sleeps in io_uring_wait_cqe with
 *                       a read of that eventfd armed on its ring;
 *   (c) eventfd (peer): raw eventfd between plain threads: the target sleeps in read(2) on a
 *                       blocking eventfd, the sender write(2)s it.
 *
 * Per sample: the target announces it is going to sleep and blocks; the sender waits for
 * the announcement plus a settle time (so the target is really asleep in the kernel), takes
 * t0 and wakes it; the target takes t1 as soon as its wait returns. Latency = t1 - t0
 * (CLOCK_MONOTONIC, same clock on both cores). The machine is shared and noisy, so the
 * three modes run interleaved in rounds (order rotating per round); each round's p50s give
 * a ratio, and the reported ratio is the median of per-round ratios.
 *
 * Usage: bench_wake [-r rounds] [-n samples_per_mode_per_round] [-s settle_us]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor/topology.h"
#include "reactor/wake.h"

#include "bench_util.h"
enum { M_MSGRING, M_URING_EFD, M_EVENTFD, NMODES };
static const char *const mode_name[NMODES] = {"msgring", "uring_eventfd", "eventfd"};

#define MAX_ROUNDS 51

static int n_rounds = 9;
static int n_samples = 1000;
static int settle_us = 50;

struct bench {
    struct sn__topology *topo;
    struct sn__placement place[2];
    struct sn__waker waker; /* the target's */
    int raw_efd;            /* blocking eventfd for the peer */
    _Atomic int ready;
    SN_CACHE_ALIGNED _Atomic long go; /* sample sequence number, -1 = quit */
    _Atomic int mode;
    SN_CACHE_ALIGNED _Atomic long sleeping; /* target: about to block for sample n */
    SN_CACHE_ALIGNED _Atomic long done;     /* target: woke for sample n */
    _Atomic uint64_t t0;
    uint64_t lat; /* written by target before `done` */
    int err;
};

static void spin_until_ns(uint64_t t)
{
    while (bu_now_ns() < t)
        __builtin_ia32_pause();
}

/* Target side of one sample: block in the mode's way until woken. */
static int target_sleep(struct bench *b, struct sn__uring *u, int mode)
{
    if (mode == M_EVENTFD) {
        uint64_t v;
        return read(b->raw_efd, &v, sizeof v) == (ssize_t)sizeof v ? 0 : -errno;
    }
    struct io_uring_cqe *cqe;
    int r = io_uring_submit_and_wait(&u->ring, 1);
    if (r < 0)
        return r;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        sn__waker_handle_cqe(&b->waker, u, cqe);
        io_uring_cqe_seen(&u->ring, cqe);
    }
    return 0;
}

static void *target(void *arg)
{
    struct bench *b = arg;
    struct sn__uring u;
    long n = 0;

    if ((b->err = sn__topology_bind_thread(b->topo, &b->place[1])) < 0 ||
        (b->err = sn__uring_init(&u, 16, 0)) < 0 ||
        (b->err = sn__waker_init(&b->waker, &u, false)) < 0) {
        atomic_store(&b->ready, -1);
        return NULL;
    }
    sn__waker_arm(&b->waker, &u);
    atomic_store_explicit(&b->ready, 1, memory_order_release);
    for (;;) {
        long g;
        while ((g = atomic_load_explicit(&b->go, memory_order_acquire)) == n)
            __builtin_ia32_pause();
        if (g < 0)
            break;
        n = g;
        int mode = atomic_load(&b->mode);
        sn__waker_arm(&b->waker, &u);
        atomic_store_explicit(&b->sleeping, n, memory_order_release);
        int r = target_sleep(b, &u, mode);
        uint64_t t1 = bu_now_ns();
        if (r < 0 && r != -EINTR) {
            b->err = r;
            atomic_store(&b->done, -1);
            break;
        }
        b->lat = t1 - atomic_load(&b->t0);
        atomic_store_explicit(&b->done, n, memory_order_release);
    }
    sn__uring_exit(&u);
    return NULL;
}

/* Sender side of one sample; returns the latency in ns, or 0 on error. */
static uint64_t one_sample(struct bench *b, struct sn__uring *u, int mode, long n)
{
    atomic_store(&b->mode, mode);
    atomic_store_explicit(&b->go, n, memory_order_release);
    while (atomic_load_explicit(&b->sleeping, memory_order_acquire) != n)
        __builtin_ia32_pause();
    spin_until_ns(bu_now_ns() + (uint64_t)settle_us * 1000);
    uint64_t one = 1;
    atomic_store(&b->t0, bu_now_ns());
    if (mode == M_MSGRING) {
        sn__wake_from_reactor(u, &b->waker);
        io_uring_submit(&u->ring);
    } else if (mode == M_URING_EFD) {
        sn__wake_from_thread(&b->waker);
    } else if (write(b->raw_efd, &one, sizeof one) != sizeof one) {
        return 0;
    }
    long d;
    while ((d = atomic_load_explicit(&b->done, memory_order_acquire)) != n && d >= 0)
        __builtin_ia32_pause();
    return d < 0 ? 0 : b->lat;
}

static int parse_args(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "r:n:s:")) != -1) {
        if (c == 'r')
            n_rounds = atoi(optarg);
        else if (c == 'n')
            n_samples = atoi(optarg);
        else if (c == 's')
            settle_us = atoi(optarg);
        else
            return -1;
    }
    if (n_rounds < 1 || n_rounds > MAX_ROUNDS || n_samples < 10 || settle_us < 0) {
        fprintf(stderr, "usage: bench_wake [-r 1..%d] [-n >=10] [-s settle_us]\n", MAX_ROUNDS);
        return -1;
    }
    return 0;
}

/* Picks two cores and pins the calling thread (the sender) to the first. */
static int setup(struct bench *b)
{
    struct sn_config cfg;
    int r = sn__topology_open(&b->topo, 0);
    if (r < 0)
        return r;
    sn_config_init(&cfg);
    cfg.smp = 2;
    if (sn__topology_core_count(b->topo) < 2) {
        fprintf(stderr, "bench_wake: fewer than 2 cores, running unpinned\n");
        cfg.unpinned = true;
    }
    if ((r = sn__topology_select(b->topo, &cfg, b->place, 2)) < 0)
        return r;
    if ((b->raw_efd = eventfd(0, EFD_CLOEXEC)) < 0)
        return -errno;
    return sn__topology_bind_thread(b->topo, &b->place[0]);
}

int main(int argc, char **argv)
{
    static struct bench b;
    uint64_t *samples;
    double p50[NMODES][MAX_ROUNDS], p99[NMODES][MAX_ROUNDS], ratio[2][MAX_ROUNDS];
    struct sn__uring u;
    pthread_t th;
    long n = 0;
    int r = -ENOMEM;

    if (parse_args(argc, argv) < 0)
        return 2;
    samples = calloc((size_t)n_samples, sizeof *samples);
    if (!samples || (r = setup(&b)) < 0 || (r = sn__uring_init(&u, 16, 0)) < 0) {
        fprintf(stderr, "bench_wake: setup failed: %s\n", strerror(-r));
        return 1;
    }
    if (pthread_create(&th, NULL, target, &b) != 0)
        return 1;
    while ((r = atomic_load_explicit(&b.ready, memory_order_acquire)) == 0)
        sched_yield();
    if (r < 0) {
        fprintf(stderr, "bench_wake: target setup failed: %s\n", strerror(-b.err));
        return 1;
    }
    printf("bench_wake: cpus %d,%d (%s), %d rounds x %d samples per mode, settle %d us\n",
           b.place[0].cpu, b.place[1].cpu, b.place[0].pinned ? "pinned" : "unpinned", n_rounds,
           n_samples, settle_us);
    for (int round = 0; round < n_rounds; round++) {
        for (int k = 0; k < NMODES; k++) {
            int mode = (round + k) % NMODES;
            for (int i = 0; i < n_samples / 10; i++) /* warm-up */
                one_sample(&b, &u, mode, ++n);
            for (int i = 0; i < n_samples; i++) {
                samples[i] = one_sample(&b, &u, mode, ++n);
                if (!samples[i]) {
                    fprintf(stderr, "bench_wake: sample failed: %s\n", strerror(-b.err));
                    return 1;
                }
            }
            qsort(samples, (size_t)n_samples, sizeof *samples, bu_cmp_u64);
            p50[mode][round] = (double)samples[n_samples / 2];
            p99[mode][round] = (double)samples[n_samples * 99 / 100];
        }
        ratio[0][round] = p50[M_MSGRING][round] / p50[M_EVENTFD][round];
        ratio[1][round] = p50[M_URING_EFD][round] / p50[M_EVENTFD][round];
        printf("round %d: p50 ns msgring=%.0f uring_eventfd=%.0f eventfd=%.0f  "
               "msgring/eventfd=%.3f\n",
               round, p50[M_MSGRING][round], p50[M_URING_EFD][round], p50[M_EVENTFD][round],
               ratio[0][round]);
    }
    atomic_store_explicit(&b.go, -1, memory_order_release);
    pthread_join(th, NULL);

    double m50[NMODES], m99[NMODES];
    for (int k = 0; k < NMODES; k++) {
        m50[k] = bu_median(p50[k], n_rounds);
        m99[k] = bu_median(p99[k], n_rounds);
        printf("%-14s p50 %6.0f ns  p99 %6.0f ns  (medians over rounds)\n", mode_name[k], m50[k],
               m99[k]);
    }
    double rmsg = bu_median(ratio[0], n_rounds), refd = bu_median(ratio[1], n_rounds);
    printf("summary: msgring_wake_p50_ns=%.0f eventfd_wake_p50_ns=%.0f ratio=%.3f "
           "msgring_wake_p99_ns=%.0f eventfd_wake_p99_ns=%.0f uring_eventfd_wake_p50_ns=%.0f "
           "uring_eventfd_ratio=%.3f rounds=%d\n",
           m50[M_MSGRING], m50[M_EVENTFD], rmsg, m99[M_MSGRING], m99[M_EVENTFD], m50[M_URING_EFD],
           refd, n_rounds);
    sn__uring_exit(&u);
    sn__waker_destroy(&b.waker);
    close(b.raw_efd);
    sn__topology_close(b.topo);
    free(samples);
    return 0;
}
