/*
 * Fibers at shutdown (contract in include/sn/fiber.h, "Shutdown"), and their gauges.
 *
 * When a core enters stopping mode the loop fails sleeps, timers, io and the waits of the
 * synchronisation primitives with -ECANCELED; fibers then unwind by themselves from the run
 * queue. The core does not wait for fibers that only
 * wait: when every core is idle nothing could wake them anyway, so the run ends as it always
 * did, cross-core calls still waiting fail with -ECANCELED and what that wakes runs; the
 * fibers still alive after that wait for something that can never settle and are abandoned. Fibers that keep running (a loop that ignores -ECANCELED) keep
 * their core busy: past fiber_stop_timeout_ms they are abandoned too, so the run can end.
 */
#include "reactor/core.h"

#include <stdio.h>

/* Rounds of "abandon, run what that wakes" at the end; bounds spawning during the end. */
#define FINISH_ROUNDS 8

void sn__fiber_stop_begin(struct sn__core *c, uint64_t now)
{
    c->stop_began_ns = now;
}

void sn__fiber_stop_check(struct sn__core *c, uint64_t now)
{
    /* `now` may predate the stop (the turn read the clock before entering it). */
    if (!c->sched.fibers.nlive || now < c->stop_began_ns ||
        now - c->stop_began_ns < c->fiber_stop_timeout_ns)
        return;
    char why[96];
    snprintf(why, sizeof why, "still alive %llu ms after the stop began",
             (unsigned long long)(c->fiber_stop_timeout_ns / 1000000u));
    sn__fibers_abandon(&c->sched, why);
}

static void drain(struct sn__core *c)
{
    while (sn__sched_has_tasks(&c->sched))
        sn__count(&c->c.tasks, sn__sched_run(&c->sched, 0));
}

void sn__fiber_stop_finish(struct sn__core *c)
{
    struct sn__sched *s = &c->sched;
    for (int round = 0; round < FINISH_ROUNDS; round++) {
        drain(c);
        if (!s->fibers.nlive)
            break;
        sn__fibers_abandon(s, "waits for a future that can no longer settle");
        drain(c);
        if (!s->fibers.nlive)
            break;
    }
    if (s->fibers.nlive) /* still spawning after every round: stop resuming them */
        sn__fibers_abandon(s, "was spawned while the run ended");
    drain(c);
    sn__fibers_release(s);
    sn__fiber_gauges(c);
}

void sn__fiber_gauges(struct sn__core *c)
{
    const struct sn__fibers *fs = &c->sched.fibers;
    atomic_store_explicit(&c->c.fibers, fs->nlive, memory_order_relaxed);
    atomic_store_explicit(&c->c.fibers_spawned, fs->spawned, memory_order_relaxed);
    atomic_store_explicit(&c->c.fiber_stack_bytes, fs->stack_bytes, memory_order_relaxed);
    atomic_store_explicit(&c->c.fiber_stack_high_water, fs->high_water, memory_order_relaxed);
}
