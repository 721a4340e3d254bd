/*
 * Internal: the clock of the queue-delay stamps (core/mesh_delay.c). A stamp's age is the
 * difference of two reads on two cores, so all it needs is a counter that runs at one rate
 * and agrees between CPUs; it need not be in nanoseconds until somebody asks.
 *
 * On x86 with an invariant TSC (CPUID 0x80000007 EDX bit 8) a tick is one TSC cycle, read with
 * a bare RDTSC (15-35 ns on the project's VM against 35-110 ns for CLOCK_MONOTONIC through
 * kvm-clock, bench/bench_tsc.c; docs/PERFORMANCE.md). Ticks become nanoseconds only when a
 * histogram is read, at the rate measured between an anchor taken when the first sampling mesh of
 * the process was made and the moment of the read (CLOCK_MONOTONIC against the TSC, both ends the
 * tightest of a few bracketed reads), so the longer the process ran, the better the rate. This
 * holds only while the CPUs' TSCs agree: the kernel of the project's VM is booted with
 * tsc=unstable, yet a cross-CPU ping-pong of TSC reads found its two vCPUs within the ping-pong's
 * own resolution (+-80 ns, docs/PERFORMANCE.md). Where they do not agree, a sample is off by
 * the offset between the two CPUs; an age that comes out negative (the receiver's TSC behind
 * the sender's) is recorded as 0, never as a huge delay (sn__stamp_age).
 * Elsewhere (no invariant TSC, other architectures) a tick is a nanosecond of sn_now_ns().
 *
 * Everything here is core-level: no syscalls but clock reads.
 */
#ifndef SN_CORE_STAMP_CLOCK_H
#define SN_CORE_STAMP_CLOCK_H

#include <sn/common.h>
#include <sn/timer.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define SN__STAMP_TSC 1
/* A stamp keeps 32 bits of time in units of 2^6 ticks: 64 TSC cycles (24 ns at 2.7 GHz; the
 * 2^31 units an age may span are 51 s there). Without the TSC, 64 ns (137 s). */
#define SN__STAMP_SHIFT 6
#else
#define SN__STAMP_TSC   0
/* 16 ns units: the 2^31 units an age may span are 34 s. */
#define SN__STAMP_SHIFT 4
#endif

/* Set once by sn__stamp_clock_start, before any stamp is taken with it. */
extern _Atomic bool sn__stamp_tsc;

/* Any thread, at least once before the first stamp (a mesh with sampling calls it when it is
 * created; later calls return at once): chooses the ticks and takes the anchor. */
void sn__stamp_clock_start(void);

/* Now, in ticks. Any thread, after sn__stamp_clock_start. */
static inline uint64_t sn__stamp_ticks(void)
{
#if SN__STAMP_TSC
    if (sn_likely(atomic_load_explicit(&sn__stamp_tsc, memory_order_relaxed)))
        return __rdtsc();
#endif
    return sn_now_ns();
}

/* The time field of a stamp taken at `ticks`. */
static inline uint32_t sn__stamp_time(uint64_t ticks)
{
    return (uint32_t)(ticks >> SN__STAMP_SHIFT);
}

/*
 * Ticks from the stamp time `then` to `now` (both sn__stamp_time values). An age of 2^31
 * units or more is a receiver's clock behind the sender's (CPUs whose TSCs disagree, or a
 * read a few cycles early): 0.
 */
static inline uint64_t sn__stamp_age(uint32_t now, uint32_t then)
{
    uint32_t d = now - then;
    return d >= 0x80000000u ? 0 : (uint64_t)d << SN__STAMP_SHIFT;
}

/* The ticks' rate: ns = ticks * num / den. */
struct sn__stamp_rate {
    uint64_t num, den;
};

/* The rate measured from the anchor to now (waits until 1 ms has passed since the anchor when
 * called sooner); 1/1 when ticks are nanoseconds. Any thread. Convert all the figures of one
 * report with one rate, so their order holds (p50 <= p99 <= max). */
void sn__stamp_rate_now(struct sn__stamp_rate *out);

/* Ticks as nanoseconds at rate r. */
static inline uint64_t sn__stamp_ns(const struct sn__stamp_rate *r, uint64_t ticks)
{
    return (uint64_t)((unsigned __int128)ticks * r->num / r->den);
}

#endif
