/*
 * Timers and the clock. A timer belongs to the core that armed it and fires there, from the
 * loop's timer phase, never before its deadline. The core's earliest deadline bounds how
 * long the loop may sleep. Timers live in a binary heap per core: arm, cancel and fire are
 * O(log n); the timer struct is embedded by the caller, so arming allocates nothing (the
 * heap's array grows by doubling, rarely).
 *
 * Shutdown: when the reactor stops, armed timers are disarmed without firing and sleep
 * futures fail with -ECANCELED; arming while the reactor stops returns -ECANCELED.
 */
#ifndef SN_TIMER_H
#define SN_TIMER_H

#include <sn/common.h>

#include <stdbool.h>

SN_BEGIN_DECLS

struct sn_future;

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC). Any thread. */
SN_API uint64_t sn_now_ns(void);

typedef void (*sn_timer_fn)(void *arg);

/* Fields are private; use the functions below. */
struct sn_timer {
    uint64_t deadline; /* absolute, sn_now_ns() scale */
    uint64_t period;   /* 0: one-shot */
    sn_timer_fn fn;
    void *arg;
    uint32_t index; /* position in the heap, UINT32_MAX when not armed */
    uint16_t core;  /* core that armed it */
    uint8_t tag;    /* run tag of the code that armed it (its group) */
    uint8_t pad;
};

/* Prepares a disarmed timer that will call fn(arg). Any thread (touches only `t`). */
SN_API void sn_timer_init(struct sn_timer *t, sn_timer_fn fn, void *arg);

/*
 * Arms `t` to fire once, `delay_ns` from now, on the calling core; an armed timer is moved.
 * `t` must stay valid until it fires or is cancelled. 0; -EPERM off a core; -EXDEV when it is
 * armed on another core; -ECANCELED while the reactor stops; -ENOMEM. Owner core only.
 */
SN_API int sn_timer_arm(struct sn_timer *t, uint64_t delay_ns);

/*
 * Arms `t` to fire every `period_ns` (> 0), first one period from now. A late core fires it
 * once and schedules the next period from the current time, so missed periods do not burst.
 * Errors as sn_timer_arm, plus -EINVAL for a zero period. Owner core only.
 */
SN_API int sn_timer_arm_periodic(struct sn_timer *t, uint64_t period_ns);

/*
 * Disarms `t`. 1 when it was armed (it will not fire), 0 when it was not (already fired,
 * never armed); -EXDEV when it is armed on another core (it stays armed there), -EPERM off a
 * core. Safe from inside its own callback. Owner core only (the core that armed it).
 */
SN_API int sn_timer_cancel(struct sn_timer *t);

/*
 * 1 while `t` is armed on the calling core, 0 when it is not armed, -EXDEV when it is armed on
 * another core (so a plain truth test still means "armed"). Owner core only.
 */
SN_API int sn_timer_armed(const struct sn_timer *t);

/*
 * A future that resolves with value 0 on the calling core `ns` from now (-ECANCELED when the
 * reactor stops first). Any reactor core; nothing blocks (the future settles there).
 */
SN_API SN_MUST_USE struct sn_future *sn_sleep(uint64_t ns);

SN_END_DECLS

#endif
