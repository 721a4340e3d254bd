/*
 * The synchronisation primitives on a running reactor: -EXDEV when another core touches an
 * object and the sn_submit_to form that works; the reactor's stop cancelling the waits
 * pending on every core (while a gate's close still waits for its members); and a stress
 * where chains on every core push through sn_submit_to into a queue on core 0 that
 * consumer chains drain under a semaphore. Results are recorded by the cores into plain
 * per-core slots and asserted on the test thread after sn_run returns.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <string.h>

#include "reactor_util.h"

static struct sn_queue *queue;
static struct sn_semaphore *sem;
static struct sn_gate *gate;
static struct sn_event *event;

static void record_err(void *arg, int err, uint64_t value)
{
    (void)value;
    *(int *)arg = err;
}

static void expect_pools_empty(unsigned ncores)
{
    for (unsigned c = 0; c < ncores; c++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_expect_eq(m.pool_in_use, 0, "core %u: %lu pooled objects left", c,
                     (unsigned long)m.pool_in_use);
    }
}

/* ---- another core ---- */

static struct {
    unsigned probe_core;
    int try_push, signal, enter, notify, pop, close;
    int64_t length;
    int pushed_through_owner;
    uint64_t item;
    int64_t left;
} xr;

/* On core 0, the owner: what sn_submit_to runs. */
static struct sn_future *push_there(void *arg)
{
    return sn_queue_push(queue, (uintptr_t)arg);
}

/* On core 1: every call on core 0's objects fails with -EXDEV; submitting to 0 works. */
static struct sn_future *probe(void *arg)
{
    (void)arg;
    xr.probe_core = sn_core_id();
    xr.try_push = sn_queue_try_push(queue, 1);
    xr.signal = sn_semaphore_signal(sem, 1);
    xr.enter = sn_gate_enter(gate);
    xr.notify = sn_event_notify_all(event);
    xr.length = sn_queue_length(queue);
    sn_done(sn_queue_pop(queue), record_err, &xr.pop);
    sn_done(sn_queue_close(queue, -EIO), record_err, &xr.close);
    return sn_submit_to(0, push_there, (void *)(uintptr_t)42);
}

static struct sn_future *after_probe(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    xr.pushed_through_owner = err;
    if (sn_queue_try_pop(queue, &xr.item) != 0)
        xr.item = 0;
    xr.left = sn_queue_length(queue) + sn_semaphore_available(sem) + sn_gate_count(gate);
    sn_queue_destroy(queue);
    sn_semaphore_destroy(sem);
    sn_gate_destroy(gate);
    sn_event_destroy(event);
    return SN_SUCCESS;
}

static struct sn_future *exdev_main(void *arg)
{
    (void)arg;
    if (sn_queue_create(4, &queue) || sn_semaphore_create(0, &sem) || sn_gate_create(&gate) ||
        sn_event_create(&event))
        return sn_failed(-ENOMEM);
    return sn_then_wrapped(sn_submit_to(1, probe, NULL), after_probe, NULL);
}

Test(sync_reactor, another_core_gets_exdev_and_submits_instead, .timeout = 60)
{
    struct sn_config cfg = test_config(2);
    memset(&xr, 0, sizeof xr);
    cr_assert_eq(sn_run(&cfg, exdev_main, NULL), 0);
    cr_assert_eq(xr.probe_core, 1);
    cr_assert_eq(xr.try_push, -EXDEV);
    cr_assert_eq(xr.signal, -EXDEV);
    cr_assert_eq(xr.enter, -EXDEV);
    cr_assert_eq(xr.notify, -EXDEV);
    cr_assert_eq(xr.length, -EXDEV);
    cr_assert_eq(xr.pop, -EXDEV);
    cr_assert_eq(xr.close, -EXDEV);
    cr_assert_eq(xr.pushed_through_owner, 0);
    cr_assert_eq(xr.item, 42);
    cr_assert_eq(xr.left, 0, "the refused calls changed nothing");
    expect_pools_empty(2);
}

/* ---- the stop cancels waits on every core ---- */

#define STOP_CORES     3
#define WAITS_PER_CORE 1000
#define KINDS          6

/* One core's objects and what happened to its waits, written only by that core. */
static struct stop_core {
    struct sn_semaphore *sem;
    struct sn_event *ev;
    struct sn_queue *full, *empty;
    struct sn_gate *gate;
    uint64_t cancelled, other;
    int late;   /* a wait made after the stop */
    int closed; /* the gate's close: 1 settled fine, -1 failed, 0 never */
    int gate_open_at_cancel;
} SN_CACHE_ALIGNED stops[STOP_CORES];

static void waits_over(void *arg, int err, uint64_t value)
{
    struct stop_core *sc = arg;
    (void)value;
    sc->closed = err == 0 ? 1 : -1;
    sn_semaphore_destroy(sc->sem);
    sn_event_destroy(sc->ev);
    sn_queue_destroy(sc->full);
    sn_queue_destroy(sc->empty);
    sn_gate_destroy(sc->gate);
}

/* A request blocked in a wait unwinds: it leaves the gate it entered. */
static void wait_ended(void *arg, int err, uint64_t value)
{
    struct stop_core *sc = &stops[sn_core_id()];
    (void)arg, (void)value;
    if (err == -ECANCELED)
        sc->cancelled++;
    else
        sc->other++;
    if (sc->cancelled == 1) {
        sc->gate_open_at_cancel = sc->closed == 0;
        sn_done(sn_event_wait(sc->ev), record_err, &sc->late);
    }
    sn_gate_leave(sc->gate);
}

static struct sn_future *start_wait(struct stop_core *sc, unsigned kind)
{
    switch (kind) {
    case 0: return sn_semaphore_wait(sc->sem, 1);
    case 1: return sn_semaphore_wait_for(sc->sem, 1, 3600 * 1000000000ull);
    case 2: return sn_event_wait(sc->ev);
    case 3: return sn_event_wait_for(sc->ev, 3600 * 1000000000ull);
    case 4: return sn_queue_push(sc->full, kind);
    default: return sn_queue_pop_for(sc->empty, 3600 * 1000000000ull);
    }
}

static struct sn_future *block_everything(void *arg)
{
    (void)arg;
    struct stop_core *sc = &stops[sn_core_id()];
    if (sn_semaphore_create(0, &sc->sem) || sn_event_create(&sc->ev) ||
        sn_queue_create(1, &sc->full) || sn_queue_create(1, &sc->empty) ||
        sn_gate_create(&sc->gate) || sn_queue_try_push(sc->full, 0))
        return sn_failed(-ENOMEM);
    for (unsigned i = 0; i < WAITS_PER_CORE; i++) {
        sn_gate_enter(sc->gate);
        sn_done(start_wait(sc, i % KINDS), wait_ended, NULL);
    }
    sn_done(sn_gate_close(sc->gate), waits_over, sc);
    return SN_SUCCESS;
}

static struct sn_future *stop_now(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    sn_stop(0);
    return SN_SUCCESS;
}

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(block_everything, NULL), stop_now, NULL);
}

Test(sync_reactor, stop_cancels_waits_on_every_core, .timeout = 60)
{
    struct sn_config cfg = test_config(STOP_CORES);
    memset(stops, 0, sizeof stops);
    cr_assert_eq(sn_run(&cfg, stop_main, NULL), 0);
    for (unsigned c = 0; c < STOP_CORES; c++) {
        struct stop_core *sc = &stops[c];
        cr_expect_eq(sc->cancelled, WAITS_PER_CORE, "core %u: %lu of %u waits cancelled", c,
                     (unsigned long)sc->cancelled, WAITS_PER_CORE);
        cr_expect_eq(sc->other, 0);
        cr_expect_eq(sc->late, -ECANCELED, "core %u: a wait after the stop fails at once", c);
        cr_expect(sc->gate_open_at_cancel, "core %u: the stop settled the gate's close", c);
        cr_expect_eq(sc->closed, 1, "core %u: the gate closed once its members left", c);
    }
    expect_pools_empty(STOP_CORES);
}

/* ---- stress: every core pushes into core 0's queue ---- */

#define MAX_CORES 4
#define CHAINS    4 /* producer chains per core */
#define POPPERS   3 /* consumer chains on core 0 */

static unsigned items_per_chain;

struct chain {
    unsigned id; /* core * CHAINS + index */
    uint64_t seq;
    int exdev; /* a direct try_push from a core that is not 0 */
} SN_CACHE_ALIGNED;

static struct chain chains[MAX_CORES * CHAINS];

/* Core 0 only. */
static struct {
    uint64_t expect[MAX_CORES * CHAINS];
    uint64_t received, sum, bad, chains_done, poppers_done;
    unsigned nchains;
    struct sn_promise *done;
} rx;

static uint64_t encode(const struct chain *ch)
{
    return ((uint64_t)ch->id << 32) | ch->seq;
}

static void chain_next(struct chain *ch);

static void chain_finished(void *arg)
{
    (void)arg;
    if (++rx.chains_done == rx.nchains)
        sn_ignore(sn_queue_close(queue, -EPIPE));
}

static void chain_pushed(void *arg, int err, uint64_t value)
{
    struct chain *ch = arg;
    (void)value;
    if (err) {
        ch->exdev = err; /* reported as a failure */
        return;
    }
    ch->seq++;
    chain_next(ch);
}

static void chain_next(struct chain *ch)
{
    if (ch->seq == items_per_chain) {
        sn_send(0, chain_finished, NULL);
        return;
    }
    if (sn_core_id() != 0 && ch->seq % 64 == 0 && sn_queue_try_push(queue, 0) != -EXDEV)
        ch->exdev = 1;
    sn_done(sn_submit_to(0, push_there, (void *)(uintptr_t)encode(ch)), chain_pushed, ch);
}

static struct sn_future *start_chains(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < CHAINS; i++) {
        struct chain *ch = &chains[sn_core_id() * CHAINS + i];
        ch->id = sn_core_id() * CHAINS + i;
        chain_next(ch);
    }
    return SN_SUCCESS;
}

static void pop_next(void);

static struct sn_future *hold_a_turn(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return sn_yield();
}

static void released(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    if (err || sn_semaphore_signal(sem, 1) != 0)
        rx.bad++;
    pop_next();
}

static void popped(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err == -EPIPE) {
        if (++rx.poppers_done == POPPERS)
            sn_promise_set(rx.done, rx.received);
        return;
    }
    unsigned id = (unsigned)(value >> 32);
    uint64_t seq = value & 0xffffffffu;
    if (err || id >= rx.nchains || seq != rx.expect[id])
        rx.bad++;
    else
        rx.expect[id]++;
    rx.received++;
    rx.sum += seq;
    /* Hold a unit of the semaphore across a loop turn, as a request would. */
    sn_done(sn_then(sn_semaphore_wait(sem, 1), hold_a_turn, NULL), released, NULL);
}

static void pop_next(void)
{
    sn_done(sn_queue_pop(queue), popped, NULL);
}

static struct sn_future *stress_over(void *arg, uint64_t received)
{
    (void)arg;
    if (sn_semaphore_available(sem) != 2 || sn_queue_length(queue) != 0)
        rx.bad++;
    rx.received = received;
    sn_queue_destroy(queue);
    sn_semaphore_destroy(sem);
    return SN_SUCCESS;
}

static struct sn_future *stress_main(void *arg)
{
    (void)arg;
    struct sn_future *done;
    if (sn_queue_create(8, &queue) || sn_semaphore_create(2, &sem))
        return sn_failed(-ENOMEM);
    rx.nchains = sn_core_count() * CHAINS;
    rx.done = sn_promise_new(&done);
    for (unsigned i = 0; i < POPPERS; i++)
        pop_next();
    sn_ignore(sn_invoke_on_all(start_chains, NULL));
    return sn_then(done, stress_over, NULL);
}

static void run_stress(unsigned ncores)
{
    struct sn_config cfg = test_config(ncores);
    memset(chains, 0, sizeof chains);
    memset(&rx, 0, sizeof rx);
    items_per_chain = SCALE(20000, 10);
    cr_assert_eq(sn_run(&cfg, stress_main, NULL), 0);
    uint64_t nchains = (uint64_t)ncores * CHAINS;
    uint64_t per = items_per_chain;
    cr_assert_eq(rx.bad, 0);
    cr_assert_eq(rx.received, nchains * per);
    cr_assert_eq(rx.sum, nchains * (per * (per - 1) / 2));
    for (unsigned i = 0; i < nchains; i++) {
        cr_assert_eq(chains[i].exdev, 0, "chain %u: %d", i, chains[i].exdev);
        cr_assert_eq(rx.expect[i], per, "chain %u: %lu items arrived", i,
                     (unsigned long)rx.expect[i]);
    }
    expect_pools_empty(ncores);
}

Test(sync_reactor, stress_every_core_pushes_into_core_0_2, .timeout = 120)
{
    run_stress(2);
}

Test(sync_reactor, stress_every_core_pushes_into_core_0_4, .timeout = 120)
{
    run_stress(4);
}
