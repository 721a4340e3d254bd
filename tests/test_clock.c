/*
 * sn_now_ns() from the TSC (core/clock.c), switched on directly (the reactor does so only
 * where the kernel trusts the TSC): it must stay within a small bound of CLOCK_MONOTONIC and
 * never step back on any thread, across the anchor renewals (20, 40, 80, 160 ms after the
 * calibration, then every 320, 640 ms and one second), with several threads reading and
 * renewing at once. Each comparison brackets the TSC read between two
 * CLOCK_MONOTONIC reads, so a preempted reader widens the bracket instead of failing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/clock.h"
#include "reactor/clock_setup.h"

#define THREADS 4
#define RUN_NS  400000000ull /* past the first five renewals */
/*
 * Allowed distance from CLOCK_MONOTONIC: 200 us where the kernel trusts the TSC (where the
 * reactor uses it). Where it does not (this project's VMs boot with tsc=unstable, and
 * CLOCK_MONOTONIC is the hypervisor's kvm-clock, which the host may adjust under the TSC),
 * 2 ms: still far below what a wrong rate or a lost anchor would give over the run.
 */
static uint64_t slack_ns;

struct reader {
    pthread_t thread;
    uint64_t run_ns, reads, backwards, outside, worst_ns;
};

static void *read_clock(void *arg)
{
    struct reader *r = arg;
    uint64_t end = sn__clock_mono_ns() + r->run_ns, last = 0;
    for (;;) {
        uint64_t m1 = sn__clock_mono_ns();
        uint64_t now = sn_now_ns();
        uint64_t m2 = sn__clock_mono_ns();
        if (now < last)
            r->backwards++;
        last = now;
        if (now + slack_ns < m1 || now > m2 + slack_ns) {
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

static void run_readers(uint64_t run_ns, bool check_distance)
{
    static struct reader readers[THREADS];
    slack_ns = sn__tsc_trusted() ? 200000 : 2000000;
    for (int i = 0; i < THREADS; i++) {
        readers[i] = (struct reader){.run_ns = run_ns};
        cr_assert_eq(pthread_create(&readers[i].thread, NULL, read_clock, &readers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(readers[i].thread, NULL);
        struct reader *r = &readers[i];
        cr_expect_gt(r->reads, 0);
        cr_expect_eq(r->backwards, 0, "thread %d: sn_now_ns() stepped back %lu times", i,
                     (unsigned long)r->backwards);
        if (check_distance)
            cr_expect_eq(r->outside, 0, "thread %d: %lu reads off CLOCK_MONOTONIC, worst by %lu ns",
                         i, (unsigned long)r->outside, (unsigned long)r->worst_ns);
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
    run_readers(RUN_NS, true);
    /* A second switch does nothing and still says it is on. */
    cr_assert(sn__clock_use_tsc(2000000));
}

/* Renewals every few microseconds, so readers race with them all the time (four readers on
 * fewer CPUs also move between them). Only the order is checked: with intervals this short
 * each renewal's slew is a large part of the rate, so a renewal held up by a preemption can
 * put the others well off CLOCK_MONOTONIC for a while, which the distance test above covers
 * at the real intervals. Last in the file: the interval stays short for the rest of the
 * process. */
Test(clock, renewals_racing_readers_never_step_back, .timeout = 60)
{
#if !defined(__x86_64__) && !defined(__i386__)
    cr_skip_test("no TSC on this architecture");
#endif
    cr_assert(sn__clock_use_tsc(2000000), "the TSC calibration failed");
    sn__clock_set_max_resync(5000);
    uint64_t before = sn__clock_renewals();
    run_readers(300000000ull, false);
    uint64_t renewals = sn__clock_renewals() - before;
    cr_expect_gt(renewals, 100, "only %lu renewals: the race was not exercised",
                 (unsigned long)renewals);
}
