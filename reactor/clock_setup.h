/*
 * Internal: choosing sn_now_ns()'s source (see reactor/clock_setup.c and core/clock.h).
 */
#ifndef SN_REACTOR_CLOCK_SETUP_H
#define SN_REACTOR_CLOCK_SETUP_H

#include <stdbool.h>

/* True when the CPU's TSC is invariant and the kernel offers it as a clock source. */
bool sn__tsc_trusted(void);

/* sn_run's thread, before the cores start: decides once per process (later calls return at
 * once) and switches sn_now_ns() to the TSC where trusted, or where SN_CLOCK=tsc. */
void sn__clock_setup(void);

#endif
