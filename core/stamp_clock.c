/*
 * The queue-delay stamps' clock: see core/stamp_clock.h.
 *
 * The anchor (a TSC and a CLOCK_MONOTONIC reading of the same instant) is written once, by
 * the thread that wins the start, before it publishes `started`; readers of the rate look at
 * it only after seeing that.
 */
#include "core/stamp_clock.h"

#include "core/clock.h"

#include <stdatomic.h>

#if SN__STAMP_TSC
#include <cpuid.h>
#endif

#define MIN_SPAN_NS 1000000ull /* a rate measured over less than 1 ms is not trusted */
#define TIGHT       20000u     /* TSC cycles: a (TSC, clock, TSC) bracket wider was preempted */

_Atomic bool sn__stamp_tsc;

static struct {
    _Atomic int started; /* 0, 1: being started, 2: started */
    uint64_t tsc0, ns0;
} anchor;

#if SN__STAMP_TSC
/* CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every P-, C- and T-state. */
static bool tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0x80000000u, NULL) < 0x80000007u)
        return false;
    __cpuid(0x80000007u, a, b, c, d);
    (void)a, (void)b, (void)c;
    return (d >> 8) & 1;
}

/* One (TSC, CLOCK_MONOTONIC) pair: the tightest of a few reads of the TSC around the clock. */
static void pair(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    *tsc = *ns = 0;
    /* At least 5 tries; more (up to 1000) while even the best one was preempted (a bracket
     * of TIGHT cycles or more: 10 us at 2 GHz), since the rate's error is the brackets over
     * the span since the anchor. */
    for (int i = 0; i < 1000 && (i < 5 || best >= TIGHT); i++) {
        uint64_t a = __rdtsc(), n = sn__clock_mono_ns(), b = __rdtsc();
        if (b >= a && b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
}
#endif

void sn__stamp_clock_start(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&anchor.started, &expected, 1)) {
        while (atomic_load_explicit(&anchor.started, memory_order_acquire) != 2)
            ; /* another thread is taking the anchor: a few clock reads */
        return;
    }
#if SN__STAMP_TSC
    if (tsc_invariant()) {
        pair(&anchor.tsc0, &anchor.ns0);
        atomic_store_explicit(&sn__stamp_tsc, true, memory_order_relaxed);
    }
#endif
    atomic_store_explicit(&anchor.started, 2, memory_order_release);
}

void sn__stamp_rate_now(struct sn__stamp_rate *out)
{
    out->num = out->den = 1;
#if SN__STAMP_TSC
    if (atomic_load_explicit(&anchor.started, memory_order_acquire) == 2 &&
        atomic_load_explicit(&sn__stamp_tsc, memory_order_relaxed)) {
        uint64_t tsc, ns;
        do
            pair(&tsc, &ns);
        while (ns - anchor.ns0 < MIN_SPAN_NS);
        if (tsc > anchor.tsc0) { /* else the TSC went back: nothing better than 1/1 to say */
            out->num = ns - anchor.ns0;
            out->den = tsc - anchor.tsc0;
        }
    }
#endif
}
