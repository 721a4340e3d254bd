/*
 * Helpers shared by the reactor tests (test_smp.c, test_reactor.c): an unpinned config and
 * iteration counts scaled down under sanitizers. Results are recorded by the reactor threads
 * into plain arrays (one slot per core, written only by that core) and asserted on the test
 * thread after sn_run returns: assertions must not run on reactor threads.
 */
#ifndef SN_TEST_REACTOR_UTIL_H
#define SN_TEST_REACTOR_UTIL_H

#include <sn.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SN_TEST_SLOW 1
#else
#define SN_TEST_SLOW 0
#endif

/* n scaled by 1/div under sanitizers (at least 1). */
#define SCALE(n, div) (SN_TEST_SLOW ? ((n) / (div) ? (n) / (div) : 1) : (n))

#define MAXC 8


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
