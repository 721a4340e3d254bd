/*
 * sn_now_ns(): CLOCK_MONOTONIC, or the TSC anchored to it (see core/clock.h).
 *
 * The anchor lives in two slots; a generation counter says which one is current. A renewal
 * writes the other slot and then publishes the next generation, so a reader never waits for
 * a writer (one preempted mid-renewal only delays the renewal), and a reader that raced with
 * a renewal sees the generation change and reads again. One writer at a time (a try-lock:
 * who loses uses the current anchor).
 */
#include "core/clock.h"

#include <sn/timer.h>

#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#define FIRST_RESYNC_NS 20000000ull   /* the first renewal: 20 ms after calibration */
#define MAX_RESYNC_NS   1000000000ull /* then doubling up to one second */

struct anchor {
    _Atomic uint64_t tsc0, ns0, mult, resync_cycles; /* mult: ns per cycle * 2^32 */
};

static struct {
    _Atomic uint64_t gen; /* slot gen & 1 is current */
    struct anchor slot[2];
    atomic_flag writing;
    /* Writer only (under `writing`). */
    uint64_t first_tsc, first_ns, interval_ns;
} clk = {.writing = ATOMIC_FLAG_INIT};

static _Atomic uint64_t max_resync_ns = MAX_RESYNC_NS;
static _Atomic int tsc_on;
static atomic_flag tsc_tried = ATOMIC_FLAG_INIT;

uint64_t sn__clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if HAVE_TSC
static inline uint64_t rdtsc(void)
{
    return __rdtsc();
}

static inline uint64_t scale(uint64_t cycles, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)cycles * mult) >> 32);
}

/* One (TSC, CLOCK_MONOTONIC) pair: the tightest of a few reads of the TSC around the clock. */
static void sample(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = rdtsc(), n = sn__clock_mono_ns(), b = rdtsc();
        if (b >= a && b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
}

static void publish(uint64_t tsc0, uint64_t ns0, uint64_t mult)
{
    uint64_t g = atomic_load_explicit(&clk.gen, memory_order_relaxed) + 1;
    struct anchor *a = &clk.slot[g & 1];
    uint64_t cycles = (uint64_t)(((unsigned __int128)clk.interval_ns << 32) / mult);
    atomic_store_explicit(&a->tsc0, tsc0, memory_order_relaxed);
    atomic_store_explicit(&a->ns0, ns0, memory_order_relaxed);
    atomic_store_explicit(&a->mult, mult, memory_order_relaxed);
    atomic_store_explicit(&a->resync_cycles, cycles, memory_order_relaxed);
    atomic_store_explicit(&clk.gen, g, memory_order_release);
}

/* What anchor `a` gives at TSC `t` (a TSC read a little behind the anchor counts as it). */
static uint64_t at(uint64_t tsc0, uint64_t ns0, uint64_t mult, uint64_t t)
{
    return ns0 + (t > tsc0 ? scale(t - tsc0, mult) : 0);
}

/*
 * A new anchor at a fresh sample, replacing (tsc0, ns0, old_mult): its time is never behind
 * what the old anchor gives at that same TSC (so the clock does not step back at the
 * switch, however long ago the caller read the TSC), and its rate both follows the TSC's
 * measured rate since the first anchor and works off the lead over CLOCK_MONOTONIC during
 * the next interval. Returns the time at the new anchor.
 */
static uint64_t renew(uint64_t tsc0, uint64_t old_ns0, uint64_t old_mult)
{
    uint64_t t, m;
    sample(&t, &m);
    uint64_t old_ns = at(tsc0, old_ns0, old_mult, t);
    uint64_t rate =
        t > clk.first_tsc
            ? (uint64_t)(((unsigned __int128)(m - clk.first_ns) << 32) / (t - clk.first_tsc))
            : 0;
    if (rate < old_mult - old_mult / 64 || rate > old_mult + old_mult / 64) {
        /* The TSC jumped (a VM restored elsewhere?): measure its rate afresh from here. */
        clk.first_tsc = t;
        clk.first_ns = m;
        rate = old_mult;
    }
    uint64_t ns0 = old_ns > m ? old_ns : m;
    uint64_t lead = ns0 - m, span = clk.interval_ns * 2;
    uint64_t cap = atomic_load_explicit(&max_resync_ns, memory_order_relaxed);
    clk.interval_ns = span < cap ? span : cap;
    if (lead > clk.interval_ns / 2)
        lead = clk.interval_ns / 2; /* at most halve the rate for one interval */
    uint64_t mult = rate - (uint64_t)((unsigned __int128)rate * lead / clk.interval_ns);
    publish(t, ns0, mult ? mult : 1);
    return ns0;
}

/*
 * The last value this thread returned: a reader that read the old anchor just before a
 * renewal and the new one just after could otherwise see the new anchor's slower rate put
 * it a few nanoseconds behind its previous read. Initial-exec: one %fs-relative access.
 */
static __thread uint64_t last_ns __attribute__((tls_model("initial-exec")));

static inline uint64_t not_behind_last(uint64_t ns)
{
    if (sn_unlikely(ns < last_ns))
        return last_ns;
    last_ns = ns;
    return ns;
}

static uint64_t tsc_now(void)
{
    for (;;) {
        uint64_t g = atomic_load_explicit(&clk.gen, memory_order_acquire);
        const struct anchor *a = &clk.slot[g & 1];
        uint64_t tsc0 = atomic_load_explicit(&a->tsc0, memory_order_relaxed);
        uint64_t ns0 = atomic_load_explicit(&a->ns0, memory_order_relaxed);
        uint64_t mult = atomic_load_explicit(&a->mult, memory_order_relaxed);
        uint64_t cycles = atomic_load_explicit(&a->resync_cycles, memory_order_relaxed);
        uint64_t t = rdtsc();
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&clk.gen, memory_order_relaxed) != g)
            continue; /* renewed meanwhile */
        /* A TSC read a little behind the anchor (taken on another CPU) counts as the anchor;
         * far behind, the TSC jumped back: renew at once rather than stand still. */
        int64_t behind = (int64_t)(tsc0 - t);
        uint64_t d = behind > 0 ? 0 : t - tsc0;
        uint64_t ns = ns0 + scale(d, mult);
        bool due = d >= cycles || behind > (int64_t)(cycles / 8);
        if (sn_likely(!due) || atomic_flag_test_and_set(&clk.writing))
            return not_behind_last(ns);
        if (atomic_load_explicit(&clk.gen, memory_order_relaxed) == g)
            ns = renew(tsc0, ns0, mult);
        atomic_flag_clear(&clk.writing);
        return not_behind_last(ns);
    }
}
#endif

bool sn__clock_use_tsc(uint64_t calibrate_ns)
{
#if HAVE_TSC
    if (atomic_flag_test_and_set(&tsc_tried))
        return atomic_load(&tsc_on) != 0;
    uint64_t t0, n0, t1, n1;
    sample(&t0, &n0);
    do
        sample(&t1, &n1);
    while (n1 - n0 < calibrate_ns);
    if (t1 <= t0)
        return false;
    clk.first_tsc = t0;
    clk.first_ns = n0;
    clk.interval_ns = FIRST_RESYNC_NS;
    publish(t1, n1, (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0)));
    atomic_store_explicit(&tsc_on, 1, memory_order_release);
    return true;
#else
    (void)calibrate_ns;
    return false;
#endif
}

uint64_t sn__clock_renewals(void)
{
    return atomic_load_explicit(&clk.gen, memory_order_relaxed);
}

void sn__clock_set_max_resync(uint64_t ns)
{
    atomic_store_explicit(&max_resync_ns, ns ? ns : 1, memory_order_relaxed);
}

bool sn__clock_tsc_on(void)
{
    return atomic_load_explicit(&tsc_on, memory_order_relaxed) != 0;
}

uint64_t sn_now_ns(void)
{
#if HAVE_TSC
    if (atomic_load_explicit(&tsc_on, memory_order_acquire))
        return tsc_now();
#endif
    return sn__clock_mono_ns();
}
