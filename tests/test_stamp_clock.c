/*
 * The queue-delay stamps' clock (core/stamp_clock.h): ticks (TSC cycles on x86) turned into
 * nanoseconds at the rate measured since the anchor must agree with CLOCK_MONOTONIC over the
 * same span, and an age that comes out negative (a receiver's TSC behind the sender's) must
 * count as 0, not as a wrapped, huge delay.
 *
 * Each end of the measured span is a ticks read bracketed by two CLOCK_MONOTONIC reads, kept
 * only when the bracket is tight, so a preempted thread retries instead of failing.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "core/clock.h"
#include "core/stamp_clock.h"

#define SPAN_NS  20000000ull /* 20 ms */
#define TIGHT_NS 20000ull    /* a bracket wider than 20 us is a preemption: read again */

/* A ticks read and the CLOCK_MONOTONIC time of the same instant (to within TIGHT_NS). */
static void instant(uint64_t *ticks, uint64_t *ns)
{
    for (int i = 0; i < 100000; i++) {
        uint64_t m1 = sn__clock_mono_ns();
        uint64_t t = sn__stamp_ticks();
        uint64_t m2 = sn__clock_mono_ns();
        if (m2 - m1 <= TIGHT_NS) {
            *ticks = t;
            *ns = m1 + (m2 - m1) / 2;
            return;
        }
    }
    cr_assert_fail("no tight read in 100000 tries");
}

Test(stamp_clock, ticks_become_the_nanoseconds_that_passed)
{
    sn__stamp_clock_start();
    for (int round = 0; round < 3; round++) {
        uint64_t t0, n0, t1, n1;
        instant(&t0, &n0);
        while (sn__clock_mono_ns() - n0 < SPAN_NS) {
        }
        instant(&t1, &n1);
        struct sn__stamp_rate rate;
        sn__stamp_rate_now(&rate);
        uint64_t ns = sn__stamp_ns(&rate, t1 - t0), want = n1 - n0;
        /* Both ends within TIGHT_NS, the rate within a fraction of a percent. */
        uint64_t slack = 2 * TIGHT_NS + want / 100;
        cr_expect(ns + slack >= want && ns <= want + slack,
                  "round %d: %llu ticks became %llu ns over %llu ns of CLOCK_MONOTONIC", round,
                  (unsigned long long)(t1 - t0), (unsigned long long)ns, (unsigned long long)want);
    }
}

Test(stamp_clock, an_age_that_comes_out_negative_is_zero)
{
    cr_expect_eq(sn__stamp_age(1000, 1000), 0);
    cr_expect_eq(sn__stamp_age(1010, 1000), (uint64_t)10 << SN__STAMP_SHIFT);
    /* The 32-bit stamp time wraps: an age across the wrap is still its distance. */
    cr_expect_eq(sn__stamp_age(5, 0xfffffff0u), (uint64_t)21 << SN__STAMP_SHIFT);
    /* The receiver's clock behind the sender's by one unit, or by a lot: 0, not ~2^32. */
    cr_expect_eq(sn__stamp_age(999, 1000), 0);
    cr_expect_eq(sn__stamp_age(0, 0x80000000u), 0);
    cr_expect_eq(sn__stamp_age(0x7fffffffu, 0), (uint64_t)0x7fffffff << SN__STAMP_SHIFT);
}

Test(stamp_clock, the_stamp_time_is_ticks_in_stamp_units)
{
    cr_expect_eq(sn__stamp_time((uint64_t)7 << SN__STAMP_SHIFT), 7);
    cr_expect_eq(sn__stamp_time(((uint64_t)1 << (32 + SN__STAMP_SHIFT)) + 3), 0);
}
