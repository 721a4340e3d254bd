/*
 * Internal: sn_now_ns()'s sources. CLOCK_MONOTONIC through the vDSO costs ~85-110 ns on the
 * project's VM (kvm-clock), several reads per loop turn; the TSC costs ~25 ns. Where the
 * reactor found the TSC invariant and trusted by the kernel (reactor/clock_setup.c), it calls
 * sn__clock_use_tsc once, and from then on sn_now_ns() is computed from the TSC:
 *
 *   ns = ns0 + (tsc - tsc0) * mult / 2^32
 *
 * with an anchor (tsc0, ns0) taken from CLOCK_MONOTONIC. The anchor is renewed by whichever
 * thread finds it older than a resync interval (short at first, one second later); each
 * renewal measures the TSC's rate over the whole time since the first anchor and slews
 * toward CLOCK_MONOTONIC, never stepping back: the new ns0 is the larger of CLOCK_MONOTONIC
 * and the old formula at the new anchor's TSC. So sn_now_ns() stays within a few
 * microseconds of CLOCK_MONOTONIC and the same on every core (the TSC is). It never steps
 * back on a thread: each thread also keeps the last value it returned (a reader that took
 * the old anchor just before a renewal and the new one just after could otherwise land a
 * few nanoseconds behind, the new rate being slower); across threads, two reads ordered by
 * a synchronisation may differ by that much.
 *
 * Everything here is core-level: no syscalls but clock reads.
 */
#ifndef SN_CORE_CLOCK_H
#define SN_CORE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Any thread, once per process (later calls do nothing): switches sn_now_ns() to the TSC.
 * The caller has checked the TSC is invariant and synchronised across CPUs. Calibrates for
 * about `calibrate_ns` of busy waiting against CLOCK_MONOTONIC. False when the TSC is not
 * available on this architecture or the calibration found it unusable (no change then).
 */
bool sn__clock_use_tsc(uint64_t calibrate_ns);

/*
 * Tests only, any thread: the longest interval between anchor renewals from the next
 * renewal on (default one second). A few microseconds makes renewals race with readers
 * all the time.
 */
void sn__clock_set_max_resync(uint64_t ns);

/* Tests only, any thread: anchors published so far (the calibration's counts as one). */
uint64_t sn__clock_renewals(void);

/* True once sn_now_ns() reads the TSC. Any thread. */
bool sn__clock_tsc_on(void);

/* CLOCK_MONOTONIC, read through the vDSO (the reference the TSC is anchored to). */
uint64_t sn__clock_mono_ns(void);

#endif
