/*
 * Internal: the stall detector, which tells a core that ran too long from one that was not
 * running (preempted on a shared machine, stopped, or blocked in the kernel).
 *
 * The loop times each phase on the coarse wall clock (reactor/loop.c); that test is all the
 * hot path pays. Truth comes from the thread's CPU time, measured by a per-thread POSIX timer
 * on CLOCK_THREAD_CPUTIME_ID that expires after --stall-ms of CPU time:
 *
 * - Checkpoints. At a phase boundary where the coarse clock has moved since the last
 *   checkpoint (at most once per clock tick, 4 ms at HZ=250, and never while the core
 *   sleeps), the timer is re-armed with the threshold. So the CPU time it measures starts
 *   at most one tick before the phase that runs now.
 * - Expiry. When the timer expires the thread has run the threshold since the checkpoint,
 *   without a new phase in between that re-armed it. Its signal handler records a backtrace
 *   of the interrupted code into the core's buffer (nothing else: no printing, no malloc),
 *   and re-arms the timer far ahead so the CPU time can still be read.
 * - Verdict. A phase the coarse clock shows as long is a stall when the CPU time since the
 *   checkpoint reached the threshold; it is reported (with the backtrace) from the loop.
 *   Otherwise the core was not running for most of it: a preemption, only counted.
 *
 * Where the timer cannot be created (seccomp, a kernel without it; for tests, the environment
 * variable SN_STALL_FALLBACK=1) the checkpoints read the thread's CPU clock instead: the same
 * verdicts, without a backtrace.
 *
 * All functions: the owning core's thread only, except install/uninstall (sn_run's thread).
 */
#ifndef SN_REACTOR_STALL_H
#define SN_REACTOR_STALL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SN__STALL_FRAMES 24

struct sn__core;

/*
 * The loop's cheap clock: CLOCK_MONOTONIC_COARSE costs a fraction of the precise clock and
 * its resolution (one tick, 4 ms at HZ=250) is enough to spot a phase longer than
 * --stall-ms (25 ms by default).
 */
static inline uint64_t sn__coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct sn__stall {
    uint64_t ns;             /* threshold (CPU and wall), 0: detector off */
    uint64_t ck_coarse;      /* coarse time of the last checkpoint */
    uint64_t ck_cpu;         /* fallback: the thread's CPU time at the checkpoint */
    uint64_t last_report_ns; /* coarse time of the last printed report */
    timer_t timer;
    bool timer_ok; /* false: fallback on the CPU clock */
    /* Written by the signal handler on the same thread (hence volatile, no atomics). */
    volatile sig_atomic_t fired; /* the timer expired since the checkpoint */
    volatile int nframes;
    void *pc; /* the interrupted instruction, if the platform tells */
    void *frames[SN__STALL_FRAMES];
};

/*
 * sn_run's thread, before the cores start: installs the process-wide handler of the stall
 * signal (SIGRTMIN + 1), keeping the previous action in *old, and loads what backtrace()
 * needs so the handler never does. 0 or a negative errno (the cores then use the fallback).
 */
int sn__stall_install(struct sigaction *old);

/* sn_run's thread, after every core thread has ended: restores the previous action. */
void sn__stall_uninstall(const struct sigaction *old);

/*
 * Owner core, before its loop starts: creates the CPU-time timer (or selects the fallback)
 * for a threshold of `ns` (0: off, nothing else happens) and takes the first checkpoint.
 * `signal_ok`: the handler is installed.
 */
void sn__stall_start(struct sn__stall *s, uint64_t ns, bool signal_ok);

/* Owner core, after its loop ended: deletes the timer (a pending signal is delivered first). */
void sn__stall_stop(struct sn__stall *s);

/* Owner core: re-arms the measurement from here (coarse time `now`). */
void sn__stall_checkpoint(struct sn__stall *s, uint64_t now);

/*
 * Owner core: a phase named `what` took `wall` ns on the coarse clock (at least the
 * threshold) and ends at coarse time `now`. Counts it as a stall of core `c` (and reports it,
 * at most once a second, with the backtrace) when the thread ran the threshold in CPU time,
 * else as a preemption; then takes a checkpoint.
 */
void sn__stall_verdict(struct sn__core *c, uint64_t wall, uint64_t now, const char *what);

/*
 * Any thread, but slow (opens and maps the module's file): writes "function+0xoff (module)"
 * for code address `addr` into buf (always NUL-terminated), using the module's full symbol
 * table (.symtab, so static functions have names too), else its dynamic symbols, else
 * "module+0xoff". Returns buf.
 */
const char *sn__symbolize(const void *addr, char *buf, size_t len);

#endif
