/*
 * Fibers talking through the synchronisation primitives (include/sn/sync.h) on a running
 * reactor: producers on two cores and consumers through a bounded queue (order, backpressure,
 * the close draining it), a semaphore serving fibers first come, first served and bounding
 * how many run at once, timeouts, a broken semaphore, an event as a condition variable, a
 * gate whose close waits for its fibers, and the stop with 10,000 fibers blocked in waits
 * (every one unwinds with -ECANCELED, the gates close, the pools are back at zero).
 * Fibers record the first failed check (fiber_util.h); the test asserts after sn_run.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include <stdatomic.h>
#include <string.h>

#include "fiber_util.h"
#include "reactor_util.h"

#define MS 1000000ull

static struct fiber_check fc;

static int run_on(unsigned ncores, sn_main_fn fn)
{
    struct sn_config cfg = test_config(ncores);
    fc = (struct fiber_check){0};
    return sn_run(&cfg, fn, NULL);
}

static void assert_clean(unsigned ncores)
{
    cr_assert_eq(fc.line, 0, "fiber check at line %d failed (saw %lld)", fc.line, fc.seen);
    for (unsigned c = 0; c < ncores; c++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_assert_eq(m.fibers, 0, "core %u: %lu fibers alive", c, (unsigned long)m.fibers);
        cr_assert_eq(m.fiber_stack_bytes, 0, "core %u", c);
        cr_assert_eq(m.pool_in_use, 0, "core %u: %lu pooled objects left", c,
                     (unsigned long)m.pool_in_use);
    }
}

static struct sn_future *spawn_named(sn_fiber_fn fn, void *arg, const char *name)
{
    struct sn_fiber_opts o = {.name = name};
    return sn_fiber_spawn(fn, arg, &o);
}

/* Awaits every future of `fs` (all of them, even after a failure); the first error. */
static int join_all(struct sn_future **fs, unsigned n)
{
    int first = 0;
    for (unsigned i = 0; i < n; i++) {
        int err = sn_await(fs[i], NULL);
        if (err && !first)
            first = err;
    }
    return first;
}

/* Yields until cond() holds, at most `turns` times: true when it held. */
static bool yield_until(bool (*cond)(void), unsigned turns)
{
    for (unsigned i = 0; i < turns && !cond(); i++)
        if (sn_fiber_yield() < 0)
            return false;
    return cond();
}

/* ---- producers and consumers through a queue ---------------------------------------------- */

#define PQ_CAP    4
#define PQ_PRODS  3 /* per core */
#define PQ_CONS   3
#define PQ_ITEMS  SCALE(3000, 10)
#define PQ_NPRODS (2 * PQ_PRODS)

static struct sn_queue *pq;

/*
 * Core 0 only. With several consumers, two items of one producer may be processed in either
 * order (a pop handed an item resumes its fiber later than a pop served at once), so order
 * is checked per consumer: each sees every producer's items in increasing order.
 */
static struct {
    uint64_t count[PQ_NPRODS], sum[PQ_NPRODS];
    uint64_t received, out_of_order, over_capacity, blocked_pushes;
    int end_err[PQ_CONS];
} pqs;

/* On core 0, the owner, for the producers of core 1. */
static struct sn_future *push_there(void *arg)
{
    return sn_queue_push(pq, (uintptr_t)arg);
}

static int producer(void *arg, uint64_t *value)
{
    (void)value;
    uint64_t id = (uintptr_t)arg;
    for (uint64_t seq = 0; seq < PQ_ITEMS; seq++) {
        uint64_t item = id << 32 | seq;
        int err;
        if (sn_core_id() == 0) {
            struct sn_future *f = sn_queue_push(pq, item);
            pqs.blocked_pushes += !sn_future_available(f);
            err = sn_await(f, NULL);
        } else {
            err = sn_await(sn_submit_to(0, push_there, (void *)(uintptr_t)item), NULL);
        }
        FCHECK(&fc, err == 0, err);
    }
    return 0;
}

static int consumer(void *arg, uint64_t *value)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t item, n = 0, next[PQ_NPRODS] = {0};
    int err;
    while ((err = sn_await(sn_queue_pop(pq), &item)) == 0) {
        unsigned id = (unsigned)(item >> 32);
        uint64_t seq = item & 0xffffffffu;
        FCHECK(&fc, id < PQ_NPRODS, id);
        if (seq < next[id])
            pqs.out_of_order++;
        next[id] = seq + 1;
        pqs.count[id]++;
        pqs.sum[id] += seq;
        if (sn_queue_length(pq) > PQ_CAP)
            pqs.over_capacity++;
        pqs.received++;
        n++;
        if (n % 7 == 0) /* let the producers catch up now and then */
            FCHECK(&fc, sn_fiber_yield() == 0, n);
    }
    pqs.end_err[me] = err;
    *value = n;
    return 0;
}

/* On core 1: its producers, in a fiber that returns when they are done. */
static int core1_producers(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    struct sn_future *fs[PQ_PRODS];
    for (unsigned i = 0; i < PQ_PRODS; i++)
        fs[i] = spawn_named(producer, (void *)(uintptr_t)(PQ_PRODS + i), "producer");
    return join_all(fs, PQ_PRODS);
}

static struct sn_future *start_core1(void *arg)
{
    (void)arg;
    return spawn_named(core1_producers, NULL, "core1");
}

static int pq_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_queue_create(PQ_CAP, &pq) == 0, 0);
    struct sn_future *cons[PQ_CONS], *prods[PQ_PRODS + 1];
    for (unsigned i = 0; i < PQ_CONS; i++)
        cons[i] = spawn_named(consumer, (void *)(uintptr_t)i, "consumer");
    for (unsigned i = 0; i < PQ_PRODS; i++)
        prods[i] = spawn_named(producer, (void *)(uintptr_t)i, "producer");
    prods[PQ_PRODS] = sn_submit_to(1, start_core1, NULL);
    int err = join_all(prods, PQ_PRODS + 1);
    FCHECK(&fc, err == 0, err);
    /* Every item is in: the close settles once the consumers drained the queue. */
    err = sn_await(sn_queue_close(pq, -EPIPE), NULL);
    FCHECK(&fc, err == 0, err);
    FCHECK(&fc, sn_queue_length(pq) == 0, sn_queue_length(pq));
    uint64_t total = 0;
    for (unsigned i = 0; i < PQ_CONS; i++) {
        uint64_t n = 0;
        err = sn_await(cons[i], &n);
        FCHECK(&fc, err == 0, err);
        FCHECK(&fc, n > 0, i); /* FIFO among the pops: every consumer got its turns */
        total += n;
    }
    FCHECK(&fc, total == pqs.received, total);
    sn_queue_destroy(pq);
    return 0;
}

static struct sn_future *pq_main(void *arg)
{
    (void)arg;
    memset(&pqs, 0, sizeof pqs);
    return spawn_named(pq_driver, NULL, "driver");
}

Test(sync_fiber, producers_on_two_cores_and_consumers_through_a_queue, .timeout = 120)
{
    cr_assert_eq(run_on(2, pq_main), 0);
    assert_clean(2);
    cr_assert_eq(pqs.received, (uint64_t)PQ_NPRODS * PQ_ITEMS);
    cr_assert_eq(pqs.out_of_order, 0, "each consumer sees a producer's items in order");
    cr_assert_eq(pqs.over_capacity, 0);
    cr_assert_gt(pqs.blocked_pushes, 0, "a full queue makes producers wait");
    uint64_t n = PQ_ITEMS;
    for (unsigned i = 0; i < PQ_NPRODS; i++) {
        cr_assert_eq(pqs.count[i], n, "producer %u", i);
        cr_assert_eq(pqs.sum[i], n * (n - 1) / 2, "producer %u: each item exactly once", i);
    }
    for (unsigned i = 0; i < PQ_CONS; i++)
        cr_assert_eq(pqs.end_err[i], -EPIPE, "consumer %u ends with the close error", i);
}

/* ---- a semaphore among fibers ---------------------------------------------------------------- */

#define FAIR_N 8

static const uint64_t fair_units[FAIR_N] = {1, 3, 1, 2, 1, 4, 1, 1};
static struct sn_semaphore *sem;
static struct {
    int order[FAIR_N];
    int next;
    uint64_t signalled;
} fair;

static int fair_waiter(void *arg, uint64_t *value)
{
    (void)value;
    unsigned k = (unsigned)(uintptr_t)arg;
    int err = sn_await(sn_semaphore_wait(sem, fair_units[k]), NULL);
    FCHECK(&fc, err == 0, err);
    fair.order[k] = fair.next++;
    FCHECK(&fc, sn_fiber_yield() == 0, k); /* hold the units for a while */
    return sn_semaphore_signal(sem, fair_units[k]);
}

static bool all_fair_waiting(void)
{
    return sn_semaphore_waiters(sem) == FAIR_N;
}

static bool all_fair_served(void)
{
    return fair.next == FAIR_N;
}

static int fair_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_semaphore_create(0, &sem) == 0, 0);
    struct sn_future *fs[FAIR_N];
    for (unsigned k = 0; k < FAIR_N; k++)
        fs[k] = spawn_named(fair_waiter, (void *)(uintptr_t)k, "fair");
    FCHECK(&fc, yield_until(all_fair_waiting, 100), sn_semaphore_waiters(sem));
    /* One unit at a time: the waiter needing 3 holds back those behind it until it has 3. */
    while (!all_fair_served() && fair.signalled < 100) {
        FCHECK(&fc, sn_semaphore_signal(sem, 1) == 0, fair.signalled);
        fair.signalled++;
        for (int i = 0; i < 4; i++)
            FCHECK(&fc, sn_fiber_yield() == 0, i);
    }
    int err = join_all(fs, FAIR_N);
    FCHECK(&fc, err == 0, err);
    FCHECK(&fc, sn_semaphore_available(sem) == (int64_t)fair.signalled,
           sn_semaphore_available(sem));
    sn_semaphore_destroy(sem);
    return 0;
}

static struct sn_future *fair_main(void *arg)
{
    (void)arg;
    memset(&fair, 0, sizeof fair);
    return spawn_named(fair_driver, NULL, "driver");
}

Test(sync_fiber, a_semaphore_serves_fibers_first_come_first_served)
{
    cr_assert_eq(run_on(1, fair_main), 0);
    assert_clean(1);
    for (int k = 0; k < FAIR_N; k++)
        cr_assert_eq(fair.order[k], k, "fiber %d was served %d-th", k, fair.order[k]);
    /* The largest wait (4) needs 4 units; never more than all waits together (14). */
    cr_assert_geq(fair.signalled, 4);
    cr_assert_leq(fair.signalled, 14);
}

#define LIMIT_UNITS  3
#define LIMIT_FIBERS 40

static struct {
    int inside, most, done;
} lim;

static int limited(void *arg, uint64_t *value)
{
    (void)value;
    unsigned i = (unsigned)(uintptr_t)arg;
    int err = sn_await(sn_semaphore_wait(sem, 1), NULL);
    FCHECK(&fc, err == 0, err);
    if (++lim.inside > lim.most)
        lim.most = lim.inside;
    err = sn_fiber_sleep_ns((i % 4 + 1) * 100000);
    FCHECK(&fc, err == 0, err);
    lim.inside--;
    lim.done++;
    return sn_semaphore_signal(sem, 1);
}

static int limit_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_semaphore_create(LIMIT_UNITS, &sem) == 0, 0);
    struct sn_future *fs[LIMIT_FIBERS];
    for (unsigned i = 0; i < LIMIT_FIBERS; i++)
        fs[i] = spawn_named(limited, (void *)(uintptr_t)i, "limited");
    int err = join_all(fs, LIMIT_FIBERS);
    FCHECK(&fc, err == 0, err);
    FCHECK(&fc, sn_semaphore_available(sem) == LIMIT_UNITS, sn_semaphore_available(sem));
    sn_semaphore_destroy(sem);
    return 0;
}

static struct sn_future *limit_main(void *arg)
{
    (void)arg;
    memset(&lim, 0, sizeof lim);
    return spawn_named(limit_driver, NULL, "driver");
}

Test(sync_fiber, a_semaphore_bounds_how_many_fibers_run_at_once)
{
    cr_assert_eq(run_on(1, limit_main), 0);
    assert_clean(1);
    cr_assert_eq(lim.done, LIMIT_FIBERS);
    cr_assert_eq(lim.most, LIMIT_UNITS, "at most %d inside at once, saw %d", LIMIT_UNITS, lim.most);
}

/* ---- timeouts ------------------------------------------------------------------------------ */

static struct {
    uint64_t big_gave_up_ns, small_served_ns;
    int big_err, small_err;
} tmo;

static int big_wait(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    tmo.big_err = sn_await(sn_semaphore_wait_for(sem, 5, 5 * MS), NULL);
    tmo.big_gave_up_ns = sn_now_ns();
    return 0;
}

static int small_wait(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    tmo.small_err = sn_await(sn_semaphore_wait(sem, 1), NULL);
    tmo.small_served_ns = sn_now_ns();
    return 0;
}

static int late_signal(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    int err = sn_fiber_sleep_ns(MS);
    return err ? err : sn_semaphore_signal(sem, 1);
}

static bool two_waiting(void)
{
    return sn_semaphore_waiters(sem) == 2;
}

static int timeout_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    struct sn_queue *q;
    struct sn_event *ev;
    uint64_t item = 0, t0 = sn_now_ns();
    FCHECK(&fc, sn_semaphore_create(0, &sem) == 0, 0);
    FCHECK(&fc, sn_queue_create(1, &q) == 0, 0);
    FCHECK(&fc, sn_event_create(&ev) == 0, 0);

    /* Each wait gives up after its deadline, never before, and takes nothing. */
    int err = sn_await(sn_semaphore_wait_for(sem, 1, 5 * MS), NULL);
    FCHECK(&fc, err == -ETIMEDOUT, err);
    FCHECK(&fc, sn_now_ns() - t0 >= 5 * MS, sn_now_ns() - t0);
    FCHECK(&fc, sn_semaphore_waiters(sem) == 0, sn_semaphore_waiters(sem));
    t0 = sn_now_ns();
    err = sn_await(sn_queue_pop_for(q, 2 * MS), &item);
    FCHECK(&fc, err == -ETIMEDOUT && item == 0, err);
    FCHECK(&fc, sn_now_ns() - t0 >= 2 * MS, sn_now_ns() - t0);
    FCHECK(&fc, sn_queue_try_push(q, 11) == 0, 0);
    err = sn_await(sn_queue_push_for(q, 12, 2 * MS), NULL);
    FCHECK(&fc, err == -ETIMEDOUT, err);
    FCHECK(&fc, sn_queue_length(q) == 1, sn_queue_length(q));
    FCHECK(&fc, sn_queue_try_pop(q, &item) == 0 && item == 11, item);
    err = sn_await(sn_event_wait_for(ev, 2 * MS), NULL);
    FCHECK(&fc, err == -ETIMEDOUT, err);
    FCHECK(&fc, sn_event_waiters(ev) == 0, sn_event_waiters(ev));

    /* A large head that times out lets the smaller wait behind it through. */
    FCHECK(&fc, sn_semaphore_signal(sem, 1) == 0, 0);
    struct sn_future *big = spawn_named(big_wait, NULL, "big");
    struct sn_future *small = spawn_named(small_wait, NULL, "small");
    FCHECK(&fc, yield_until(two_waiting, 100), sn_semaphore_waiters(sem));
    FCHECK(&fc, sn_semaphore_available(sem) == 1, sn_semaphore_available(sem));
    FCHECK(&fc, join_all((struct sn_future *[]){big, small}, 2) == 0, 0);
    FCHECK(&fc, tmo.big_err == -ETIMEDOUT, tmo.big_err);
    FCHECK(&fc, tmo.small_err == 0, tmo.small_err);
    FCHECK(&fc, tmo.small_served_ns >= tmo.big_gave_up_ns, 0);

    /* A wait served before its deadline succeeds, and its timer is gone with it. */
    t0 = sn_now_ns();
    struct sn_future *sig = spawn_named(late_signal, NULL, "signal");
    err = sn_await(sn_semaphore_wait_for(sem, 1, 3600 * 1000 * MS), NULL);
    FCHECK(&fc, err == 0, err);
    FCHECK(&fc, sn_now_ns() - t0 < 1000 * MS, sn_now_ns() - t0);
    FCHECK(&fc, sn_await(sig, NULL) == 0, 0);

    sn_semaphore_destroy(sem);
    sn_queue_destroy(q);
    sn_event_destroy(ev);
    return 0;
}

static struct sn_future *timeout_main(void *arg)
{
    (void)arg;
    memset(&tmo, 0, sizeof tmo);
    return spawn_named(timeout_driver, NULL, "driver");
}

Test(sync_fiber, timeouts_give_up_after_the_deadline_and_take_nothing)
{
    cr_assert_eq(run_on(1, timeout_main), 0);
    assert_clean(1);
}

/* ---- a broken semaphore -------------------------------------------------------------------- */

#define BROKEN_N 6

static int broken_errs[BROKEN_N];

static int broken_waiter(void *arg, uint64_t *value)
{
    (void)value;
    unsigned i = (unsigned)(uintptr_t)arg;
    struct sn_future *f =
        i % 2 ? sn_semaphore_wait_for(sem, i, 3600 * 1000 * MS) : sn_semaphore_wait(sem, 1);
    broken_errs[i] = sn_await(f, NULL);
    return 0;
}

static bool all_broken_waiting(void)
{
    return sn_semaphore_waiters(sem) == BROKEN_N;
}

static int broken_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_semaphore_create(0, &sem) == 0, 0);
    struct sn_future *fs[BROKEN_N];
    for (unsigned i = 0; i < BROKEN_N; i++)
        fs[i] = spawn_named(broken_waiter, (void *)(uintptr_t)i, "waiter");
    FCHECK(&fc, yield_until(all_broken_waiting, 100), sn_semaphore_waiters(sem));
    FCHECK(&fc, sn_semaphore_break(sem, -EIO) == 0, 0);
    FCHECK(&fc, join_all(fs, BROKEN_N) == 0, 0);
    /* Broken for good: later waits fail at once, a second break changes nothing. */
    struct sn_future *f = sn_semaphore_wait(sem, 1);
    FCHECK(&fc, sn_future_available(f), 0);
    int err = sn_await(f, NULL);
    FCHECK(&fc, err == -EIO, err);
    FCHECK(&fc, sn_semaphore_try_wait(sem, 0) == -EIO, 0);
    FCHECK(&fc, sn_semaphore_break(sem, -EPERM) == 0, 0);
    FCHECK(&fc, sn_semaphore_signal(sem, 2) == 0, 0);
    err = sn_await(sn_semaphore_wait(sem, 1), NULL);
    FCHECK(&fc, err == -EIO, err);
    FCHECK(&fc, sn_semaphore_available(sem) == 2, sn_semaphore_available(sem));
    sn_semaphore_destroy(sem);
    return 0;
}

static struct sn_future *broken_main(void *arg)
{
    (void)arg;
    memset(broken_errs, 0, sizeof broken_errs);
    return spawn_named(broken_driver, NULL, "driver");
}

Test(sync_fiber, breaking_a_semaphore_fails_every_waiting_fiber)
{
    cr_assert_eq(run_on(1, broken_main), 0);
    assert_clean(1);
    for (int i = 0; i < BROKEN_N; i++)
        cr_assert_eq(broken_errs[i], -EIO, "waiter %d: %d", i, broken_errs[i]);
}

/* ---- an event as a condition variable ------------------------------------------------------- */

#define COND_N 5

static struct sn_event *ev;
static struct {
    int ready; /* tickets handed out, one per notify_one */
    int woke, took[COND_N];
} cond;

static int cond_waiter(void *arg, uint64_t *value)
{
    (void)value;
    unsigned i = (unsigned)(uintptr_t)arg;
    /* Check, then wait, with nothing in between (include/sn/sync.h, sn_event_wait). */
    while (cond.ready == 0) {
        int err = sn_await(sn_event_wait(ev), NULL);
        FCHECK(&fc, err == 0, err);
        cond.woke++;
    }
    cond.ready--;
    cond.took[i] = 1;
    return 0;
}

static bool all_cond_waiting(void)
{
    return sn_event_waiters(ev) == COND_N;
}

static int cond_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_event_create(&ev) == 0, 0);
    struct sn_future *fs[COND_N];
    for (unsigned i = 0; i < COND_N; i++)
        fs[i] = spawn_named(cond_waiter, (void *)(uintptr_t)i, "cond");
    FCHECK(&fc, yield_until(all_cond_waiting, 100), sn_event_waiters(ev));
    /* notify_one wakes exactly the oldest waiter. */
    cond.ready = 1;
    FCHECK(&fc, sn_event_notify_one(ev) == 1, 0);
    for (int i = 0; i < 4; i++)
        FCHECK(&fc, sn_fiber_yield() == 0, i);
    FCHECK(&fc, cond.woke == 1 && cond.took[0] == 1, cond.woke);
    FCHECK(&fc, sn_event_waiters(ev) == COND_N - 1, sn_event_waiters(ev));
    /* notify_all wakes the rest; without a ticket each one checks and waits again. */
    FCHECK(&fc, sn_event_notify_all(ev) == COND_N - 1, 0);
    for (int i = 0; i < 4; i++)
        FCHECK(&fc, sn_fiber_yield() == 0, i);
    FCHECK(&fc, cond.woke == COND_N, cond.woke);
    FCHECK(&fc, sn_event_waiters(ev) == COND_N - 1, sn_event_waiters(ev));
    cond.ready = COND_N - 1;
    FCHECK(&fc, sn_event_notify_all(ev) == COND_N - 1, 0);
    FCHECK(&fc, join_all(fs, COND_N) == 0, 0);
    FCHECK(&fc, cond.ready == 0, cond.ready);
    FCHECK(&fc, sn_event_notify_one(ev) == 0, 0); /* nobody waits: lost */
    sn_event_destroy(ev);
    return 0;
}

static struct sn_future *cond_main(void *arg)
{
    (void)arg;
    memset(&cond, 0, sizeof cond);
    return spawn_named(cond_driver, NULL, "driver");
}

Test(sync_fiber, an_event_wakes_fibers_as_a_condition_variable)
{
    cr_assert_eq(run_on(1, cond_main), 0);
    assert_clean(1);
    for (int i = 0; i < COND_N; i++)
        cr_assert_eq(cond.took[i], 1, "fiber %d", i);
}

/* ---- a gate's close waits for its fibers ---------------------------------------------------- */

#define GATE_N 50

static struct sn_gate *gate;
static struct {
    int entered, left, close_err, enter_after_close, close_again;
    int64_t inside_at_close, count_after;
} gs;

static int member(void *arg, uint64_t *value)
{
    (void)value;
    unsigned i = (unsigned)(uintptr_t)arg;
    int err = sn_gate_enter(gate);
    FCHECK(&fc, err == 0, err);
    gs.entered++;
    err = sn_fiber_sleep_ns((i % 5 + 1) * 200000);
    FCHECK(&fc, err == 0, err);
    gs.left++;
    return sn_gate_leave(gate);
}

static bool all_entered(void)
{
    return gs.entered == GATE_N;
}

static int gate_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    FCHECK(&fc, sn_gate_create(&gate) == 0, 0);
    struct sn_future *fs[GATE_N];
    for (unsigned i = 0; i < GATE_N; i++)
        fs[i] = spawn_named(member, (void *)(uintptr_t)i, "member");
    FCHECK(&fc, yield_until(all_entered, 100), gs.entered);
    gs.inside_at_close = sn_gate_count(gate);
    struct sn_future *closed = sn_gate_close(gate);
    gs.enter_after_close = sn_gate_enter(gate);
    gs.close_again = sn_await(sn_gate_close(gate), NULL);
    gs.close_err = sn_await(closed, NULL);
    /* Resumed by the last leave: everyone has left by now. */
    FCHECK(&fc, gs.left == GATE_N, gs.left);
    gs.count_after = sn_gate_count(gate);
    FCHECK(&fc, join_all(fs, GATE_N) == 0, 0);
    sn_gate_destroy(gate);
    return 0;
}

static struct sn_future *gate_main(void *arg)
{
    (void)arg;
    memset(&gs, 0, sizeof gs);
    return spawn_named(gate_driver, NULL, "driver");
}

Test(sync_fiber, a_gates_close_waits_for_every_fiber_inside)
{
    cr_assert_eq(run_on(1, gate_main), 0);
    assert_clean(1);
    cr_assert_eq(gs.inside_at_close, GATE_N);
    cr_assert_eq(gs.close_err, 0);
    cr_assert_eq(gs.enter_after_close, -ESHUTDOWN);
    cr_assert_eq(gs.close_again, -EALREADY);
    cr_assert_eq(gs.count_after, 0);
}

/* ---- the stop with 10,000 fibers blocked in waits -------------------------------------------- */

enum { W_SEM, W_SEM_FOR, W_EVENT, W_EVENT_FOR, W_PUSH, W_POP, W_POP_FOR, NWAITS };

/*
 * 10,000 on two cores, under ASan too. TSan counts every live fiber as a thread and dies past
 * 8,128 ("Thread limit exceeded"), so its build blocks 7,000.
 */
#if defined(__SANITIZE_THREAD__)
#define STOP_PER_CORE   3500
#define STOP_TIMEOUT_MS 120000
#else
#define STOP_PER_CORE   5000
#define STOP_TIMEOUT_MS SN_CONFIG_DEFAULT_FIBER_STOP_TIMEOUT_MS
#endif

static _Atomic uint64_t blocked;

/* One core's objects and counts, touched only by that core. */
static struct stop_core {
    struct sn_semaphore *sem;
    struct sn_event *ev;
    struct sn_queue *full, *empty;
    struct sn_gate *gate;
    uint64_t returned[NWAITS], settled, wrong_err, not_cancelled;
    int close_err;
    uint64_t returned_at_close;
} SN_CACHE_ALIGNED stops[2];

static struct sn_future *start_wait(struct stop_core *sc, unsigned kind)
{
    const uint64_t hour = 3600 * 1000 * MS;
    switch (kind) {
    case W_SEM: return sn_semaphore_wait(sc->sem, 1);
    case W_SEM_FOR: return sn_semaphore_wait_for(sc->sem, 1, hour);
    case W_EVENT: return sn_event_wait(sc->ev);
    case W_EVENT_FOR: return sn_event_wait_for(sc->ev, hour);
    case W_PUSH: return sn_queue_push(sc->full, kind);
    case W_POP: return sn_queue_pop(sc->empty);
    default: return sn_queue_pop_for(sc->empty, hour);
    }
}

/* A request: enters the gate, blocks in a wait, unwinds and leaves. */
static int blocked_request(void *arg, uint64_t *value)
{
    (void)value;
    unsigned kind = (unsigned)(uintptr_t)arg;
    struct stop_core *sc = &stops[sn_core_id()];
    int err = sn_gate_enter(sc->gate);
    FCHECK(&fc, err == 0, err);
    atomic_fetch_add(&blocked, 1);
    err = sn_await(start_wait(sc, kind), NULL);
    if (err != -ECANCELED)
        sc->not_cancelled++;
    /* A wait after the stop fails at once, it does not block the unwinding. */
    if (kind == W_EVENT && sn_await(sn_event_wait(sc->ev), NULL) != -ECANCELED)
        sc->not_cancelled++;
    sc->returned[kind]++;
    (void)sn_gate_leave(sc->gate);
    return err;
}

static void request_settled(void *arg, int err, uint64_t value)
{
    struct stop_core *sc = arg;
    (void)value;
    sc->settled++;
    if (err != -ECANCELED)
        sc->wrong_err++;
}

/* The shutdown of a server: close the gate, wait for the requests, free the objects. */
static int closer(void *arg, uint64_t *value)
{
    (void)value;
    struct stop_core *sc = arg;
    sc->close_err = sn_await(sn_gate_close(sc->gate), NULL);
    for (int k = 0; k < NWAITS; k++)
        sc->returned_at_close += sc->returned[k];
    sn_semaphore_destroy(sc->sem);
    sn_event_destroy(sc->ev);
    sn_queue_destroy(sc->full);
    sn_queue_destroy(sc->empty);
    sn_gate_destroy(sc->gate);
    return 0;
}

static struct sn_future *block_core(void *arg)
{
    (void)arg;
    struct stop_core *sc = &stops[sn_core_id()];
    if (sn_semaphore_create(0, &sc->sem) || sn_event_create(&sc->ev) ||
        sn_queue_create(1, &sc->full) || sn_queue_create(1, &sc->empty) ||
        sn_gate_create(&sc->gate) || sn_queue_try_push(sc->full, 0))
        return sn_failed(-ENOMEM);
    for (unsigned i = 0; i < STOP_PER_CORE; i++)
        sn_done(spawn_named(blocked_request, (void *)(uintptr_t)(i % NWAITS), "request"),
                request_settled, sc);
    sn_ignore(spawn_named(closer, sc, "closer"));
    return SN_SUCCESS;
}

static uint64_t stop_began_ns;

static int stopper(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    int err = sn_await(sn_invoke_on_all(block_core, NULL), NULL);
    FCHECK(&fc, err == 0, err);
    /* Bounded poll on real state: every request of both cores is blocked. */
    for (int i = 0; i < 20000 && atomic_load(&blocked) < 2 * STOP_PER_CORE; i++)
        FCHECK(&fc, sn_fiber_sleep_ns(MS) == 0, i);
    FCHECK(&fc, atomic_load(&blocked) == 2 * STOP_PER_CORE, atomic_load(&blocked));
    stop_began_ns = sn_now_ns();
    sn_stop(3);
    return 0;
}

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    sn_ignore(spawn_named(stopper, NULL, "stopper"));
    return sn_when_stopped();
}

Test(sync_fiber, the_stop_unwinds_ten_thousand_fibers_blocked_in_waits, .timeout = 300)
{
    memset(stops, 0, sizeof stops);
    atomic_store(&blocked, 0);
    struct sn_config cfg = test_config(2);
    cfg.fiber_stop_timeout_ms = STOP_TIMEOUT_MS;
    fc = (struct fiber_check){0};
    cr_assert_eq(sn_run(&cfg, stop_main, NULL), 3);
    uint64_t took = sn_now_ns() - stop_began_ns;
    cr_log_info("the stop with %u blocked fibers took %lu ms", 2 * STOP_PER_CORE,
                (unsigned long)(took / MS));
    assert_clean(2);
    for (unsigned c = 0; c < 2; c++) {
        struct stop_core *sc = &stops[c];
        uint64_t total = 0;
        for (unsigned k = 0; k < NWAITS; k++) {
            /* fibers i < STOP_PER_CORE with i % NWAITS == k */
            uint64_t want = (STOP_PER_CORE - k + NWAITS - 1) / NWAITS;
            cr_assert_eq(sc->returned[k], want, "core %u wait %u: %lu of %lu fibers returned", c, k,
                         (unsigned long)sc->returned[k], (unsigned long)want);
            total += sc->returned[k];
        }
        cr_assert_eq(total, STOP_PER_CORE);
        cr_assert_eq(sc->not_cancelled, 0, "core %u: every wait failed with -ECANCELED", c);
        cr_assert_eq(sc->settled, STOP_PER_CORE, "core %u", c);
        cr_assert_eq(sc->wrong_err, 0, "core %u: every fiber's future failed with -ECANCELED", c);
        cr_assert_eq(sc->close_err, 0, "core %u: the gate closed once everyone left", c);
        cr_assert_eq(sc->returned_at_close, STOP_PER_CORE, "core %u", c);
    }
    /* Waits are cancelled: nothing holds the run up to the fiber timeout. */
    cr_assert_lt(took, (uint64_t)STOP_TIMEOUT_MS * MS, "the stop took %lu ms",
                 (unsigned long)(took / MS));
}
