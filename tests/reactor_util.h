/*
 * Helpers shared by the reactor tests (test_smp.c, test_reactor.c): an unpinned config and
 * iteration counts scaled down under sanitizers. Results are recorded by the reactor threads
 * into plain arrays (one slot per core, written only by that core) and asserted on the test
 * thread after sn_run returns: assertions must not run on reactor threads.
 */
#ifndef SN_TEST_REACTOR_UTIL_H
#define SN_TEST_REACTOR_UTIL_H

#include <errno.h>
#include <sn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SN_TEST_SLOW 1
#else
#define SN_TEST_SLOW 0
#endif

/* n scaled by 1/div under sanitizers (at least 1). */
#define SCALE(n, div) (SN_TEST_SLOW ? ((n) / (div) ? (n) / (div) : 1) : (n))

#define MAXC 8

/* State the test polls from a reactor core: see ru_poll_until. */
struct ru_poll {
    bool (*done)(void *arg);
    void *arg;
    uint64_t end_ns;
};

static inline uint64_t ru_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline struct sn_future *ru_poll_step(void *p, uint64_t unused)
{
    struct ru_poll *w = p;
    (void)unused;
    bool done = w->done(w->arg);
    if (done || ru_now_ns() >= w->end_ns) {
        free(w);
        return done ? SN_SUCCESS : sn_failed(-ETIMEDOUT);
    }
    return sn_then(sn_sleep(1000000), ru_poll_step, w);
}

/*
 * Waits on a reactor core for state that other work changes, never for a fixed time: a
 * future that settles with 0 once done(arg) holds (checked now, then every millisecond, the
 * core running its other work in between), or fails with -ETIMEDOUT after ms. Owner core only.
 */
static inline struct sn_future *ru_poll_until(bool (*done)(void *arg), void *arg, unsigned ms)
{
    struct ru_poll *w = malloc(sizeof *w);
    if (!w)
        return sn_failed(-ENOMEM);
    *w = (struct ru_poll){done, arg, ru_now_ns() + (uint64_t)ms * 1000000u};
    return ru_poll_step(w, 0);
}

static inline struct sn_config test_config(unsigned ncores)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = ncores;
    cfg.unpinned = true;
    cfg.idle_poll_us = 20;
    cfg.stall_ms = 0;
    return cfg;
}

#endif
