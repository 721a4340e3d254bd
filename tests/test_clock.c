/*
 * sn_now_ns() from the TSC (core/clock.c), switched on directly (the reactor does so only
 * where the kernel trusts the TSC): it must stay within a small bound of CLOCK_MONOTONIC and
 * never step back on any thread, across the anchor renewals (20, 40, 80, 160 ms after the
 * calibration, then every 320, 640 ms and one second), with several threads reading and
 * renewing at once. Each comparison brackets the TSC read between two CLOCK_MONOTONIC reads,
 * so a preempted reader widens the bracket instead of failing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/clock.h"
#include "reactor/clock_setup.h"

#define THREADS  4
#define RUN_NS   400000000ull /* past the first five renewals */
#define SLACK_NS 200000ull    /* allowed distance from CLOCK_MONOTONIC */

struct reader {
    pthread_t thread;
    uint64_t reads, backwards, outside, worst_ns;
};

static void *read_clock(void *arg)
{
    struct reader *r = arg;
    uint64_t end = sn__clock_mono_ns() + RUN_NS, last = 0;
    for (;;) {
        uint64_t m1 = sn__clock_mono_ns();
        uint64_t now = sn_now_ns();
        uint64_t m2 = sn__clock_mono_ns();
        if (now < last)
            r->backwards++;
        last = now;
        if (now + SLACK_NS < m1 || now > m2 + SLACK_NS) {
            r->outside++;
            uint64_t off = now < m1 ? m1 - now : now - m2;
            if (off > r->worst_ns)
                r->worst_ns = off;
        }
        for (int i = 0; i < 200; i++) { /* the fast path, many times per bracket */
            uint64_t t = sn_now_ns();
            if (t < last)
                r->backwards++;
            last = t;
            r->reads++;
        }
        if (m2 >= end)
            return NULL;
    }
}

/* What the reactor decides from: the answer is stable, and SN_CLOCK=monotonic wins. First in
 * the file: under the TSan shim every test runs in one process, and the switch is for good. */
Test(clock, monotonic_when_told)
{
    bool trusted = sn__tsc_trusted();
    cr_assert_eq(sn__tsc_trusted(), trusted);
    setenv("SN_CLOCK", "monotonic", 1);
    sn__clock_setup();
    cr_assert_not(sn__clock_tsc_on(), "SN_CLOCK=monotonic but sn_now_ns() reads the TSC");
    unsetenv("SN_CLOCK");
}

Test(clock, tsc_tracks_monotonic_and_never_steps_back, .timeout = 60)
{
#if !defined(__x86_64__) && !defined(__i386__)
    cr_skip_test("no TSC on this architecture");
#endif
    cr_assert(sn__clock_use_tsc(2000000), "the TSC calibration failed");
    cr_assert(sn__clock_tsc_on());
    static struct reader readers[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&readers[i].thread, NULL, read_clock, &readers[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(readers[i].thread, NULL);
        struct reader *r = &readers[i];
        cr_expect_gt(r->reads, 0);
        cr_expect_eq(r->backwards, 0, "thread %d: sn_now_ns() stepped back %lu times", i,
                     (unsigned long)r->backwards);
        cr_expect_eq(r->outside, 0, "thread %d: %lu reads off CLOCK_MONOTONIC, worst by %lu ns", i,
                     (unsigned long)r->outside, (unsigned long)r->worst_ns);
    }
    /* A second switch does nothing and still says it is on. */
    cr_assert(sn__clock_use_tsc(2000000));
}
