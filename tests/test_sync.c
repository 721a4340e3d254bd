/*
 * Semaphores, gates, events and queues (include/sn/sync.h) on a scheduler bound to the test
 * thread: order, units, breaking, timeouts (the timer phase is driven by hand with a clock
 * ahead of the real one), closing, destroying with waiters, -EXDEV from another core (a
 * second scheduler bound in turn), the off-core aborts (in a child process), and the
 * shutdown hook. Every test ends with the core pool back at zero: no future or record leaks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <sn.h>
#include <string.h>
#include <unistd.h>

#include "abort_util.h"
#include "sched_fixture.h"

TestSuite(sync, .init = sched_setup, .fini = sched_teardown);

/* ---- helpers ---- */

struct outcome {
    int calls;
    int err;
    uint64_t value;
    int order; /* position among the outcomes that settled, from `settled` */
};

static int settled;

static void record(void *arg, int err, uint64_t value)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = err;
    o->value = value;
    o->order = settled++;
}

static void watch(struct sn_future *f, struct outcome *o)
{
    cr_assert_not_null(f);
    *o = (struct outcome){.order = -1};
    sn_done(f, record, o);
}

/* Runs the timer phase as if `ns` had passed, and then the run queue. */
static void time_passes(uint64_t ns)
{
    sn__timers_expire(&sched, sn_now_ns() + ns);
    sn__sched_run(&sched, 0);
}

#define MS 1000000ull

/* ---- semaphore ---- */

Test(sync, semaphore_serves_waiters_in_order)
{
    struct sn_semaphore *sem;
    struct outcome o[5];
    settled = 0;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    for (int i = 0; i < 5; i++)
        watch(sn_semaphore_wait(sem, 1), &o[i]);
    cr_assert_eq(sn_semaphore_waiters(sem), 5);
    cr_assert_eq(sn_semaphore_signal(sem, 2), 0);
    cr_assert_eq(o[0].calls + o[1].calls + o[2].calls, 2);
    cr_assert_eq(o[0].order, 0);
    cr_assert_eq(o[1].order, 1);
    cr_assert_eq(sn_semaphore_signal(sem, 4), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(o[i].calls, 1);
        cr_assert_eq(o[i].err, 0);
        cr_assert_eq(o[i].order, i, "waiter %d served %d-th", i, o[i].order);
    }
    cr_assert_eq(sn_semaphore_available(sem), 1);
    cr_assert_eq(sn_semaphore_waiters(sem), 0);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_large_head_holds_back_smaller_waits)
{
    struct sn_semaphore *sem;
    struct outcome big, small, late;
    cr_assert_eq(sn_semaphore_create(1, &sem), 0);
    watch(sn_semaphore_wait(sem, 3), &big);
    /* One unit is free, yet the small wait queues behind the big one: FIFO. */
    watch(sn_semaphore_wait(sem, 1), &small);
    cr_assert_eq(small.calls, 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, 1), -EAGAIN);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(big.calls + small.calls, 0);
    cr_assert_eq(sn_semaphore_available(sem), 2);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(big.calls, 1);
    cr_assert_eq(small.calls, 0);
    cr_assert_eq(sn_semaphore_available(sem), 0);
    watch(sn_semaphore_wait(sem, 1), &late);
    cr_assert_eq(sn_semaphore_signal(sem, 2), 0);
    cr_assert_eq(small.calls, 1);
    cr_assert_eq(late.calls, 1);
    cr_assert_eq(sn_semaphore_available(sem), 0);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_try_wait_and_units)
{
    struct sn_semaphore *sem;
    cr_assert_eq(sn_semaphore_create(3, &sem), 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, 2), 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, 2), -EAGAIN);
    cr_assert_eq(sn_semaphore_available(sem), 1);
    cr_assert_eq(sn_semaphore_try_wait(sem, 0), 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, 1), 0);
    cr_assert_eq(sn_semaphore_available(sem), 0);
    /* A wait that can be served at once succeeds at once. */
    cr_assert_eq(sn_semaphore_signal(sem, 5), 0);
    struct sn_future *f = sn_semaphore_wait(sem, 5);
    cr_assert(sn_future_available(f));
    sn_ignore(f);
    cr_assert_eq(sn_semaphore_available(sem), 0);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_limits)
{
    struct sn_semaphore *sem;
    cr_assert_eq(sn_semaphore_create((uint64_t)INT64_MAX + 1, &sem), -EINVAL);
    cr_assert_eq(sn_semaphore_create(0, NULL), -EINVAL);
    cr_assert_eq(sn_semaphore_create(INT64_MAX - 1, &sem), 0);
    cr_assert_eq(sn_semaphore_signal(sem, 2), -EOVERFLOW);
    cr_assert_eq(sn_semaphore_available(sem), INT64_MAX - 1);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, (uint64_t)INT64_MAX + 1), -EINVAL);
    struct outcome o;
    watch(sn_semaphore_wait(sem, UINT64_MAX), &o);
    cr_assert_eq(o.err, -EINVAL);
    sn_semaphore_destroy(sem);
    sn_semaphore_destroy(NULL);
}

Test(sync, semaphore_break_fails_waiters_and_later_waits)
{
    struct sn_semaphore *sem;
    struct outcome a, b, later;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    watch(sn_semaphore_wait(sem, 1), &a);
    watch(sn_semaphore_wait_for(sem, 2, 1000 * MS), &b);
    cr_assert_eq(sn_semaphore_break(sem, -ENOTCONN), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, -ENOTCONN);
    cr_assert_eq(b.err, -ENOTCONN);
    cr_assert_eq(sched.timers.n, 0, "the broken wait's timeout is disarmed");
    watch(sn_semaphore_wait(sem, 0), &later);
    cr_assert_eq(later.err, -ENOTCONN);
    cr_assert_eq(sn_semaphore_try_wait(sem, 0), -ENOTCONN);
    /* Final: the first error stays; units still count. */
    cr_assert_eq(sn_semaphore_break(sem, -EIO), 0);
    cr_assert_eq(sn_semaphore_signal(sem, 2), 0);
    cr_assert_eq(sn_semaphore_available(sem), 2);
    cr_assert_eq(sn_semaphore_try_wait(sem, 1), -ENOTCONN);
    sn_semaphore_destroy(sem);

    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    cr_assert_eq(sn_semaphore_break(sem, 0), 0);
    cr_assert_eq(sn_semaphore_try_wait(sem, 1), -EPIPE);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_timeout_takes_nothing)
{
    struct sn_semaphore *sem;
    struct outcome o;
    cr_assert_eq(sn_semaphore_create(1, &sem), 0);
    watch(sn_semaphore_wait_for(sem, 2, 50 * MS), &o);
    cr_assert_eq(sched.timers.n, 1);
    time_passes(1 * MS);
    cr_assert_eq(o.calls, 0, "no timeout before the deadline");
    time_passes(100 * MS);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, -ETIMEDOUT);
    cr_assert_eq(sn_semaphore_available(sem), 1);
    cr_assert_eq(sn_semaphore_waiters(sem), 0);
    /* Later units are not owed to it. */
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(sn_semaphore_available(sem), 2);
    cr_assert_eq(o.calls, 1);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_timeout_zero_and_served_in_time)
{
    struct sn_semaphore *sem;
    struct outcome now, zero, in_time;
    cr_assert_eq(sn_semaphore_create(1, &sem), 0);
    watch(sn_semaphore_wait_for(sem, 1, 0), &now);
    cr_assert_eq(now.calls, 1);
    cr_assert_eq(now.err, 0, "served at once: the timeout does not matter");
    watch(sn_semaphore_wait_for(sem, 1, 0), &zero);
    cr_assert_eq(zero.err, -ETIMEDOUT);
    watch(sn_semaphore_wait_for(sem, 1, 50 * MS), &in_time);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(in_time.calls, 1);
    cr_assert_eq(in_time.err, 0);
    cr_assert_eq(sched.timers.n, 0, "the served wait's timeout is disarmed");
    time_passes(100 * MS);
    cr_assert_eq(in_time.calls, 1);
    sn_semaphore_destroy(sem);
}

Test(sync, semaphore_timeout_of_the_head_lets_the_next_through)
{
    struct sn_semaphore *sem;
    struct outcome big, small;
    cr_assert_eq(sn_semaphore_create(1, &sem), 0);
    watch(sn_semaphore_wait_for(sem, 5, 10 * MS), &big);
    watch(sn_semaphore_wait(sem, 1), &small);
    cr_assert_eq(small.calls, 0);
    time_passes(20 * MS);
    cr_assert_eq(big.err, -ETIMEDOUT);
    cr_assert_eq(small.calls, 1);
    cr_assert_eq(small.err, 0);
    cr_assert_eq(sn_semaphore_available(sem), 0);
    sn_semaphore_destroy(sem);
}

/* A continuation that destroys the semaphore it was served by. */
static void destroy_sem(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    sn_semaphore_destroy(arg);
}

static struct outcome rewait_out;

/* A continuation that waits on the semaphore again at once. */
static void wait_again(void *arg, int err, uint64_t value)
{
    (void)value;
    cr_assert_eq(err, 0);
    watch(sn_semaphore_wait(arg, 1), &rewait_out);
}

Test(sync, semaphore_continuations_may_reenter)
{
    struct sn_semaphore *sem;
    struct outcome second;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    sn_done(sn_semaphore_wait(sem, 1), wait_again, sem);
    watch(sn_semaphore_wait(sem, 1), &second);
    /* Both are served by one signal before the first one's continuation waits again: the
     * new wait queues behind nobody and waits for the next unit. */
    cr_assert_eq(sn_semaphore_signal(sem, 2), 0);
    cr_assert_eq(second.err, 0);
    cr_assert_eq(second.calls, 1);
    cr_assert_eq(rewait_out.calls, 0);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    cr_assert_eq(rewait_out.calls, 1);

    /* The first served waiter's continuation destroys the semaphore; the second still gets
     * its units (ASan checks nothing touches the freed semaphore). */
    sn_done(sn_semaphore_wait(sem, 1), destroy_sem, sem);
    watch(sn_semaphore_wait(sem, 1), &second);
    cr_assert_eq(sn_semaphore_signal(sem, 2), 0);
    cr_assert_eq(second.calls, 1);
    cr_assert_eq(second.err, 0);
}

static struct sn_semaphore *order_sem;
static struct outcome order_first;

/* The first served waiter's continuation returns a unit at once. */
static void give_back(void *arg, int err, uint64_t value)
{
    record(arg, err, value);
    cr_assert_eq(sn_semaphore_signal(order_sem, 1), 0);
}

Test(sync, continuations_run_in_service_order)
{
    struct outcome second, third;
    settled = 0;
    cr_assert_eq(sn_semaphore_create(0, &order_sem), 0);
    order_first = (struct outcome){.order = -1};
    sn_done(sn_semaphore_wait(order_sem, 1), give_back, &order_first);
    watch(sn_semaphore_wait(order_sem, 1), &second);
    watch(sn_semaphore_wait(order_sem, 1), &third);
    /* Two units serve the first two; the first one's continuation gives one back, which
     * serves the third: its continuation still runs after the second's. */
    cr_assert_eq(sn_semaphore_signal(order_sem, 2), 0);
    cr_assert_eq(order_first.order, 0);
    cr_assert_eq(second.order, 1);
    cr_assert_eq(third.order, 2);
    cr_assert_eq(sn_semaphore_available(order_sem), 0);
    sn_semaphore_destroy(order_sem);
}

Test(sync, semaphore_destroy_fails_waiters)
{
    struct sn_semaphore *sem;
    struct outcome a, b;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    watch(sn_semaphore_wait(sem, 1), &a);
    watch(sn_semaphore_wait_for(sem, 1, 10 * MS), &b);
    sn_semaphore_destroy(sem);
    cr_assert_eq(a.err, -ECANCELED);
    cr_assert_eq(b.err, -ECANCELED);
    cr_assert_eq(sched.timers.n, 0);
}

/* ---- gate ---- */

Test(sync, gate_close_waits_for_members)
{
    struct sn_gate *g;
    struct outcome closed;
    cr_assert_eq(sn_gate_create(&g), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sn_gate_enter(g), 0);
    cr_assert_eq(sn_gate_count(g), 3);
    watch(sn_gate_close(g), &closed);
    cr_assert_eq(sn_gate_enter(g), -ESHUTDOWN);
    cr_assert_eq(sn_gate_count(g), 3);
    cr_assert_eq(sn_gate_leave(g), 0);
    cr_assert_eq(sn_gate_leave(g), 0);
    cr_assert_eq(closed.calls, 0);
    cr_assert_eq(sn_gate_leave(g), 0);
    cr_assert_eq(closed.calls, 1);
    cr_assert_eq(closed.err, 0);
    cr_assert_eq(sn_gate_leave(g), -EINVAL);
    cr_assert_eq(sn_gate_count(g), 0);
    struct outcome again;
    watch(sn_gate_close(g), &again);
    cr_assert_eq(again.err, -EALREADY);
    sn_gate_destroy(g);
}

Test(sync, gate_close_when_empty_and_destroy)
{
    struct sn_gate *g;
    struct outcome closed;
    cr_assert_eq(sn_gate_create(&g), 0);
    cr_assert_eq(sn_gate_leave(g), -EINVAL);
    cr_assert_eq(sn_gate_enter(g), 0);
    cr_assert_eq(sn_gate_leave(g), 0);
    watch(sn_gate_close(g), &closed);
    cr_assert_eq(closed.calls, 1);
    cr_assert_eq(closed.err, 0);
    sn_gate_destroy(g);

    cr_assert_eq(sn_gate_create(&g), 0);
    cr_assert_eq(sn_gate_enter(g), 0);
    watch(sn_gate_close(g), &closed);
    sn_gate_destroy(g);
    cr_assert_eq(closed.err, -ECANCELED);
    sn_gate_destroy(NULL);
}

/* ---- event ---- */

Test(sync, event_notify_one_wakes_the_oldest)
{
    struct sn_event *ev;
    struct outcome o[3];
    settled = 0;
    cr_assert_eq(sn_event_create(&ev), 0);
    cr_assert_eq(sn_event_notify_one(ev), 0, "nobody waits: the notify is lost");
    for (int i = 0; i < 3; i++)
        watch(sn_event_wait(ev), &o[i]);
    cr_assert_eq(o[0].calls, 0, "the lost notify is not remembered");
    cr_assert_eq(sn_event_waiters(ev), 3);
    cr_assert_eq(sn_event_notify_one(ev), 1);
    cr_assert_eq(o[0].calls, 1);
    cr_assert_eq(o[1].calls + o[2].calls, 0);
    cr_assert_eq(sn_event_notify_one(ev), 1);
    cr_assert_eq(o[1].calls, 1);
    cr_assert_eq(o[1].order, 1);
    cr_assert_eq(sn_event_waiters(ev), 1);
    sn_event_destroy(ev);
    cr_assert_eq(o[2].err, -ECANCELED);
}

static struct sn_event *rewait_ev;
static struct outcome rewait_ev_out;
static int rewaits;

/* A woken wait that waits again at once. */
static void wait_event_again(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    cr_assert_eq(err, 0);
    rewaits++;
    watch(sn_event_wait(rewait_ev), &rewait_ev_out);
}

Test(sync, event_notify_all_wakes_only_the_waits_pending_then)
{
    struct outcome o[4];
    cr_assert_eq(sn_event_create(&rewait_ev), 0);
    rewaits = 0;
    for (int i = 0; i < 4; i++)
        watch(sn_event_wait(rewait_ev), &o[i]);
    sn_done(sn_event_wait(rewait_ev), wait_event_again, NULL);
    cr_assert_eq(sn_event_notify_all(rewait_ev), 5);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(o[i].calls, 1);
    cr_assert_eq(rewaits, 1);
    cr_assert_eq(rewait_ev_out.calls, 0, "a wait made during the notify waits for the next");
    cr_assert_eq(sn_event_waiters(rewait_ev), 1);
    cr_assert_eq(sn_event_notify_all(rewait_ev), 1);
    cr_assert_eq(rewait_ev_out.calls, 1);
    cr_assert_eq(sn_event_notify_all(rewait_ev), 0);
    sn_event_destroy(rewait_ev);
}

Test(sync, event_timeout)
{
    struct sn_event *ev;
    struct outcome zero, timed, plain;
    cr_assert_eq(sn_event_create(&ev), 0);
    watch(sn_event_wait_for(ev, 0), &zero);
    cr_assert_eq(zero.err, -ETIMEDOUT);
    watch(sn_event_wait_for(ev, 10 * MS), &timed);
    watch(sn_event_wait(ev), &plain);
    time_passes(20 * MS);
    cr_assert_eq(timed.err, -ETIMEDOUT);
    cr_assert_eq(plain.calls, 0);
    cr_assert_eq(sn_event_notify_one(ev), 1, "the timed-out wait is gone");
    cr_assert_eq(plain.calls, 1);
    sn_event_destroy(ev);
}

/* ---- queue ---- */

Test(sync, queue_push_waits_when_full)
{
    struct sn_queue *q;
    struct outcome push4, push5, pop;
    cr_assert_eq(sn_queue_create(3, &q), 0);
    cr_assert_eq(sn_queue_capacity(q), 3);
    for (uint64_t i = 1; i <= 3; i++) {
        struct sn_future *f = sn_queue_push(q, i);
        cr_assert(sn_future_available(f));
        sn_ignore(f);
    }
    watch(sn_queue_push(q, 4), &push4);
    cr_assert_eq(sn_queue_try_push(q, 99), -EAGAIN);
    watch(sn_queue_push(q, 5), &push5);
    cr_assert_eq(push4.calls + push5.calls, 0);
    cr_assert_eq(sn_queue_length(q), 3);
    watch(sn_queue_pop(q), &pop);
    cr_assert_eq(pop.value, 1);
    cr_assert_eq(push4.calls, 1, "the freed slot goes to the oldest push");
    cr_assert_eq(push5.calls, 0);
    cr_assert_eq(sn_queue_length(q), 3);
    for (uint64_t want = 2; want <= 5; want++) {
        uint64_t item;
        cr_assert_eq(sn_queue_try_pop(q, &item), 0);
        cr_assert_eq(item, want);
    }
    cr_assert_eq(push5.calls, 1);
    uint64_t item;
    cr_assert_eq(sn_queue_try_pop(q, &item), -EAGAIN);
    cr_assert_eq(sn_queue_length(q), 0);
    sn_queue_destroy(q);
}

Test(sync, queue_pop_waits_when_empty)
{
    struct sn_queue *q;
    struct outcome a, b;
    settled = 0;
    cr_assert_eq(sn_queue_create(1, &q), 0);
    watch(sn_queue_pop(q), &a);
    watch(sn_queue_pop(q), &b);
    cr_assert_eq(a.calls + b.calls, 0);
    cr_assert_eq(sn_queue_try_push(q, 7), 0);
    cr_assert_eq(a.value, 7, "handed to the oldest pop");
    cr_assert_eq(sn_queue_length(q), 0);
    struct sn_future *f = sn_queue_push(q, 8);
    cr_assert(sn_future_available(f));
    sn_ignore(f);
    cr_assert_eq(b.value, 8);
    cr_assert_eq(b.order, 1);
    sn_queue_destroy(q);
}

Test(sync, queue_close_drains_then_fails)
{
    struct sn_queue *q;
    struct outcome waiting_push, closed, pop1, pop2, pop3, late_push;
    cr_assert_eq(sn_queue_create(2, &q), 0);
    cr_assert_eq(sn_queue_try_push(q, 1), 0);
    cr_assert_eq(sn_queue_try_push(q, 2), 0);
    watch(sn_queue_push(q, 3), &waiting_push);
    watch(sn_queue_close(q, -ENODATA), &closed);
    cr_assert_eq(waiting_push.err, -ENODATA, "a waiting push fails at the close");
    cr_assert_eq(closed.calls, 0, "items remain");
    watch(sn_queue_push(q, 4), &late_push);
    cr_assert_eq(late_push.err, -ENODATA);
    cr_assert_eq(sn_queue_try_push(q, 4), -ENODATA);
    watch(sn_queue_pop(q), &pop1);
    cr_assert_eq(pop1.value, 1);
    cr_assert_eq(closed.calls, 0);
    watch(sn_queue_pop(q), &pop2);
    cr_assert_eq(pop2.value, 2);
    cr_assert_eq(closed.calls, 1, "drained");
    cr_assert_eq(closed.err, 0);
    watch(sn_queue_pop(q), &pop3);
    cr_assert_eq(pop3.err, -ENODATA);
    uint64_t item;
    cr_assert_eq(sn_queue_try_pop(q, &item), -ENODATA);
    struct outcome again;
    watch(sn_queue_close(q, -EIO), &again);
    cr_assert_eq(again.err, -EALREADY);
    sn_queue_destroy(q);
}

Test(sync, queue_close_wakes_waiting_pops)
{
    struct sn_queue *q;
    struct outcome a, b, closed;
    cr_assert_eq(sn_queue_create(4, &q), 0);
    watch(sn_queue_pop(q), &a);
    watch(sn_queue_pop_for(q, 10 * MS), &b);
    watch(sn_queue_close(q, 0), &closed);
    cr_assert_eq(a.err, -EPIPE);
    cr_assert_eq(b.err, -EPIPE);
    cr_assert_eq(closed.calls, 1);
    cr_assert_eq(closed.err, 0);
    cr_assert_eq(sched.timers.n, 0);
    sn_queue_destroy(q);
}

Test(sync, queue_timeouts)
{
    struct sn_queue *q;
    struct outcome pop, push, zero;
    cr_assert_eq(sn_queue_create(1, &q), 0);
    watch(sn_queue_pop_for(q, 10 * MS), &pop);
    time_passes(20 * MS);
    cr_assert_eq(pop.err, -ETIMEDOUT);
    cr_assert_eq(sn_queue_try_push(q, 1), 0, "the timed-out pop does not take it");
    cr_assert_eq(sn_queue_length(q), 1);
    watch(sn_queue_push_for(q, 2, 10 * MS), &push);
    watch(sn_queue_push_for(q, 3, 0), &zero);
    cr_assert_eq(zero.err, -ETIMEDOUT);
    time_passes(20 * MS);
    cr_assert_eq(push.err, -ETIMEDOUT);
    uint64_t item;
    cr_assert_eq(sn_queue_try_pop(q, &item), 0);
    cr_assert_eq(item, 1);
    cr_assert_eq(sn_queue_try_pop(q, &item), -EAGAIN, "the timed-out push left nothing");
    sn_queue_destroy(q);
}

Test(sync, queue_destroy_with_items_and_waiters)
{
    struct sn_queue *q;
    struct outcome push, closed;
    cr_assert_eq(sn_queue_create(1, &q), 0);
    cr_assert_eq(sn_queue_create(0, &q), -EINVAL);
    cr_assert_eq(sn_queue_create((1u << 31) + 1, &q), -EINVAL);
    cr_assert_eq(sn_queue_create(1, &q), 0);
    cr_assert_eq(sn_queue_try_push(q, 1), 0);
    watch(sn_queue_push_for(q, 2, 10 * MS), &push);
    sn_queue_destroy(q);
    cr_assert_eq(push.err, -ECANCELED);

    cr_assert_eq(sn_queue_create(1, &q), 0);
    cr_assert_eq(sn_queue_try_push(q, 1), 0);
    watch(sn_queue_close(q, -EPIPE), &closed);
    sn_queue_destroy(q);
    cr_assert_eq(closed.err, -ECANCELED);
    cr_assert_eq(sched.timers.n, 0);
    sn_queue_destroy(NULL);
}

/* ---- another core, no core ---- */

Test(sync, another_core_gets_exdev)
{
    struct sn_semaphore *sem;
    struct sn_gate *g;
    struct sn_event *ev;
    struct sn_queue *q;
    cr_assert_eq(sn_semaphore_create(1, &sem), 0);
    cr_assert_eq(sn_gate_create(&g), 0);
    cr_assert_eq(sn_event_create(&ev), 0);
    cr_assert_eq(sn_queue_create(1, &q), 0);

    struct sn__sched other;
    cr_assert_eq(sn__sched_init(&other, 1, NULL), 0);
    sn__sched_bind(&other, 2);
    struct outcome o[9];
    watch(sn_semaphore_wait(sem, 1), &o[0]);
    watch(sn_semaphore_wait_for(sem, 1, MS), &o[1]);
    watch(sn_gate_close(g), &o[2]);
    watch(sn_event_wait(ev), &o[3]);
    watch(sn_event_wait_for(ev, MS), &o[4]);
    watch(sn_queue_push(q, 1), &o[5]);
    watch(sn_queue_push_for(q, 1, MS), &o[6]);
    watch(sn_queue_pop(q), &o[7]);
    watch(sn_queue_pop_for(q, MS), &o[8]);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(o[i].calls, 1);
        cr_assert_eq(o[i].err, -EXDEV, "future %d: %d", i, o[i].err);
    }
    uint64_t item;
    cr_assert_eq(sn_semaphore_try_wait(sem, 1), -EXDEV);
    cr_assert_eq(sn_semaphore_signal(sem, 1), -EXDEV);
    cr_assert_eq(sn_semaphore_break(sem, -EIO), -EXDEV);
    cr_assert_eq(sn_semaphore_available(sem), -EXDEV);
    cr_assert_eq(sn_semaphore_waiters(sem), -EXDEV);
    cr_assert_eq(sn_gate_enter(g), -EXDEV);
    cr_assert_eq(sn_gate_leave(g), -EXDEV);
    cr_assert_eq(sn_gate_count(g), -EXDEV);
    cr_assert_eq(sn_event_notify_one(ev), -EXDEV);
    cr_assert_eq(sn_event_notify_all(ev), -EXDEV);
    cr_assert_eq(sn_event_waiters(ev), -EXDEV);
    cr_assert_eq(sn_queue_try_push(q, 1), -EXDEV);
    cr_assert_eq(sn_queue_try_pop(q, &item), -EXDEV);
    cr_assert_eq(sn_queue_length(q), -EXDEV);
    cr_assert_eq(sn_queue_capacity(q), -EXDEV);
    cr_assert_eq(other.pool.in_use, 0);
    sn__sched_bind(NULL, 0);
    /* No core at all: the int forms say -EXDEV too, creation -EPERM. */
    cr_assert_eq(sn_semaphore_signal(sem, 1), -EXDEV);
    cr_assert_eq(sn_gate_enter(g), -EXDEV);
    cr_assert_eq(sn_queue_try_push(q, 1), -EXDEV);
    struct sn_semaphore *none;
    cr_assert_eq(sn_semaphore_create(1, &none), -EPERM);
    sn__sched_destroy(&other);

    sn__sched_bind(&sched, 1);
    /* Nothing changed on the owner. */
    cr_assert_eq(sn_semaphore_available(sem), 1);
    cr_assert_eq(sn_gate_count(g), 0);
    cr_assert_eq(sn_queue_length(q), 0);
    sn_semaphore_destroy(sem);
    sn_gate_destroy(g);
    sn_event_destroy(ev);
    sn_queue_destroy(q);
}

static void wait_off_core(void *arg)
{
    sn__sched_bind(NULL, 0);
    sn_ignore(sn_semaphore_wait(arg, 1));
}

static void destroy_on_core_1(void *arg)
{
    static struct sn__sched other;
    if (sn__sched_init(&other, 1, NULL) != 0)
        _exit(3);
    sn__sched_bind(&other, 2);
    sn_semaphore_destroy(arg);
}

static void pop_off_core(void *arg)
{
    sn__sched_bind(NULL, 0);
    sn_ignore(sn_queue_pop(arg));
}

Test(sync, off_core_and_wrong_core_abort)
{
    struct sn_semaphore *sem;
    struct sn_queue *q;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    cr_assert_eq(sn_queue_create(1, &q), 0);
    cr_assert(
        au_aborts_with(wait_off_core, sem, "libsn: sn_semaphore_wait called off a reactor core"));
    cr_assert(au_aborts_with(pop_off_core, q, "libsn: sn_queue_pop called off a reactor core"));
    cr_assert(au_aborts_with(destroy_on_core_1, sem,
                             "libsn: sn_semaphore_destroy called on core 1 (the object is "
                             "core 0's)"));
    sn_semaphore_destroy(sem);
    sn_queue_destroy(q);
}

/* ---- shutdown ---- */

Test(sync, stopping_cancels_waits_but_not_closes)
{
    struct sn_semaphore *sem;
    struct sn_event *ev;
    struct sn_queue *full, *empty;
    struct sn_gate *g;
    struct outcome o[6], gate_closed, drained;
    cr_assert_eq(sn_semaphore_create(0, &sem), 0);
    cr_assert_eq(sn_event_create(&ev), 0);
    cr_assert_eq(sn_queue_create(1, &full), 0);
    cr_assert_eq(sn_queue_create(1, &empty), 0);
    cr_assert_eq(sn_gate_create(&g), 0);
    cr_assert_eq(sn_queue_try_push(full, 1), 0);
    watch(sn_semaphore_wait(sem, 1), &o[0]);
    watch(sn_semaphore_wait_for(sem, 1, 1000 * MS), &o[1]);
    watch(sn_event_wait(ev), &o[2]);
    watch(sn_queue_push(full, 2), &o[3]);
    watch(sn_queue_pop(empty), &o[4]);
    watch(sn_queue_pop_for(empty, 1000 * MS), &o[5]);
    cr_assert_eq(sn_gate_enter(g), 0);
    watch(sn_gate_close(g), &gate_closed);
    cr_assert_not(sn_list_empty(&sched.sync_waiting));

    /* What the reactor does when the core enters stopping mode. */
    sched.stopping = true;
    sn__timers_cancel_all(&sched);
    sn__sync_cancel_all(&sched);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(o[i].err, -ECANCELED, "wait %d: %d", i, o[i].err);
    cr_assert(sn_list_empty(&sched.sync_waiting));
    cr_assert_eq(gate_closed.calls, 0, "a gate close is not cancelled");

    /* Waits that would block fail at once; those that can be served still succeed. */
    struct outcome blocked, served;
    watch(sn_event_wait(ev), &blocked);
    cr_assert_eq(blocked.err, -ECANCELED);
    watch(sn_queue_pop(empty), &blocked);
    cr_assert_eq(blocked.err, -ECANCELED);
    watch(sn_queue_pop(full), &served);
    cr_assert_eq(served.err, 0);
    cr_assert_eq(served.value, 1);
    cr_assert_eq(sn_semaphore_signal(sem, 1), 0);
    watch(sn_semaphore_wait(sem, 1), &served);
    cr_assert_eq(served.err, 0);
    watch(sn_semaphore_wait(sem, 1), &blocked);
    cr_assert_eq(blocked.err, -ECANCELED);
    cr_assert(sn_list_empty(&sched.sync_waiting));

    cr_assert_eq(sn_queue_try_push(full, 3), 0);
    watch(sn_queue_close(full, 0), &drained);
    cr_assert_eq(drained.calls, 0);
    cr_assert_eq(sn_gate_leave(g), 0);
    cr_assert_eq(gate_closed.err, 0);
    cr_assert_eq(gate_closed.calls, 1);
    sn_queue_destroy(full);
    cr_assert_eq(drained.err, -ECANCELED);
    sn_semaphore_destroy(sem);
    sn_event_destroy(ev);
    sn_queue_destroy(empty);
    sn_gate_destroy(g);
}
