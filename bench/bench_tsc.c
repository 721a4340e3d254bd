/*
 * bench_tsc: what the queue-delay stamps' clock (core/stamp_clock.h) rests on, measured.
 *
 *   cost      ns per read of CLOCK_MONOTONIC through the vDSO (sn_now_ns() where the kernel
 *             does not trust the TSC, e.g. kvm-clock on the project's VM) and of a bare RDTSC,
 *             back to back in a loop (the median of rounds); the ratio is rdtsc / clock;
 *   skew      two threads pinned to CPUs 0 and 1 take turns (a ping-pong on one cache line):
 *             each reads the TSC (fenced) after seeing the other's reading and before
 *             answering. With CPU 1's TSC ahead of CPU 0's by `off`, each (mine - theirs)
 *             seen on CPU 1 is off + a trip's time and each one on CPU 0 is -off + a trip's
 *             time, so off lies in [-min_0, min_1]: a window as wide as the two shortest
 *             trips. A window that excludes 0 shows TSCs that disagree.
 * x86 only (elsewhere it prints a summary with zeros).
 *
 * Usage: bench_tsc [-r rounds]
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>

#define READS 1000000
#define TRIPS 200000

static double clock_cost_ns(void)
{
    uint64_t t0 = bu_now_ns(), sink = 0;
    for (int i = 0; i < READS; i++)
        sink += bu_now_ns();
    uint64_t t1 = bu_now_ns();
    __asm__ volatile("" : : "r"(sink));
    return (double)(t1 - t0) / READS;
}

static double rdtsc_cost_ns(void)
{
    uint64_t t0 = bu_now_ns(), sink = 0;
    for (int i = 0; i < READS; i++)
        sink += __rdtsc();
    uint64_t t1 = bu_now_ns();
    __asm__ volatile("" : : "r"(sink));
    return (double)(t1 - t0) / READS;
}

static uint64_t fenced_tsc(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static struct {
    _Alignas(64) _Atomic uint64_t reading;
    _Atomic int turn;
    int64_t min_d[2]; /* min over trips of (my TSC - the other's earlier reading), per side */
} pp;

static void trips(int side)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&pp.turn, memory_order_acquire) != side) {
        }
        uint64_t theirs = atomic_load_explicit(&pp.reading, memory_order_relaxed);
        int64_t d = (int64_t)(fenced_tsc() - theirs);
        if (i > 0 || side == 1)
            best = d < best ? d : best;
        atomic_store_explicit(&pp.reading, fenced_tsc(), memory_order_relaxed);
        atomic_store_explicit(&pp.turn, !side, memory_order_release);
    }
    pp.min_d[side] = best;
}

static void *side1(void *arg)
{
    (void)arg;
    bu_pin_self_or_exit(1);
    trips(1);
    return NULL;
}

/* Pings from CPU 0; returns the window [lo, hi] in cycles where CPU 1's TSC minus CPU 0's lies. */
static void skew(int64_t *lo, int64_t *hi)
{
    pthread_t t;
    atomic_store(&pp.turn, 0);
    atomic_store(&pp.reading, fenced_tsc());
    pthread_create(&t, NULL, side1, NULL);
    bu_pin_self_or_exit(0);
    trips(0);
    pthread_join(t, NULL);
    *lo = -pp.min_d[0]; /* CPU 0 saw -off + trip >= min_0 */
    *hi = pp.min_d[1];  /* CPU 1 saw off + trip >= min_1 */
    bu_pin_self(-1);
}

int main(int argc, char **argv)
{
    int rounds = 5, cpu = -1;
    int rc = bu_rounds_cpu(argc, argv, &rounds, &cpu);
    if (rc)
        return rc;
    double clk[64], tsc[64];
    if (rounds > 64)
        rounds = 64;
    for (int r = 0; r < rounds; r++) {
        clk[r] = clock_cost_ns();
        tsc[r] = rdtsc_cost_ns();
    }
    double c = bu_median(clk, rounds), t = bu_median(tsc, rounds);
    uint64_t n0 = bu_now_ns(), c0 = __rdtsc();
    int64_t lo = 0, hi = 0;
    skew(&lo, &hi);
    double ghz = (double)(__rdtsc() - c0) / (double)(bu_now_ns() - n0);
    printf("CLOCK_MONOTONIC %.1f ns a read, RDTSC %.1f ns (medians of %d rounds); TSC %.3f GHz\n",
           c, t, rounds, ghz);
    printf("CPU 1's TSC minus CPU 0's lies in [%lld, %lld] cycles ([%.0f, %.0f] ns)%s\n",
           (long long)lo, (long long)hi, (double)lo / ghz, (double)hi / ghz,
           lo <= 0 && hi >= 0 ? "" : ": THE TSCs DISAGREE");
    printf("summary: clock_ns=%.1f rdtsc_ns=%.1f rdtsc_vs_clock=%.2f tsc_skew_lo_ns=%.0f "
           "tsc_skew_hi_ns=%.0f\n",
           c, t, t / c, (double)lo / ghz, (double)hi / ghz);
    return 0;
}
#else
int main(void)
{
    printf("bench_tsc: x86 only\n");
    printf("summary: clock_ns=0 rdtsc_ns=0 rdtsc_vs_clock=0 tsc_skew_lo_ns=0 tsc_skew_hi_ns=0\n");
    return 0;
}
#endif
