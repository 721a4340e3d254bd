/*
 * Stress of the synchronisation primitives on one core (a scheduler bound to the test
 * thread): producers push sequenced items into a bounded queue, consumers pop them, take
 * semaphore units for each item inside a gate and give them back later, watchers wait on an
 * event that releases notify. A seeded random driver picks which actor makes its next call
 * and in which form (waiting, with a timeout, or try), lets time jump ahead so timeouts
 * fire, and runs the run queue; after every step the invariants are checked:
 *   - every producer's items arrive in order, none lost, none twice;
 *   - units available + units held == the semaphore's total; the gate count is the number
 *     of consumers holding units; the wait counts match the actors that wait;
 *   - pushes wait only while the queue is full, pops only while it is empty;
 *   - every list is served first come, first served: a wait that succeeds is the oldest of
 *     its kind still waiting (timeouts and cancellations may leave from anywhere).
 * The end closes the queue (consumers drain it), closes the gate while members are inside,
 * cancels the remaining waits as the reactor's stop does, and checks the pool is back at 0.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <string.h>

#include "core/sched.h"

#define NPROD  6
#define NCONS  6
#define NWATCH 3
#define SEC    1000000000ull

static struct sn__sched sched;

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

enum { IDLE, BUSY, HAS_ITEM, ACQUIRING, HOLDING, DONE };

struct line;

struct actor {
    int state;
    unsigned id;
    struct line *line; /* the line it waits in, NULL when its call did not have to wait */
    uint64_t seq;      /* producer: next sequence number to push */
    uint64_t item;     /* consumer: the item it holds */
    uint64_t units;    /* consumer: units asked for or held */
};

/* The actors waiting on one wait list, oldest first: the model FIFO service is checked on. */
struct line {
    struct actor *a[NPROD + NCONS + NWATCH];
    unsigned n;
};

struct world {
    uint32_t rng;
    uint64_t total_units, held;
    uint32_t cap;
    struct sn_queue *q;
    struct sn_semaphore *sem;
    struct sn_gate *gate;
    struct sn_event *ev;
    struct actor prod[NPROD], cons[NCONS], watch[NWATCH];
    uint64_t expect[NPROD]; /* next sequence number each producer's items must show */
    uint64_t pushed, received, timeouts, wakes, refused, bad;
    bool gate_closed;
    struct line pushers, poppers, acquirers, watchers;
    uint64_t virt_ns; /* how far the timer phase runs ahead of the clock */
};

static struct world w;

static uint64_t rnd(uint64_t n)
{
    return rng_next(&w.rng) % n;
}

static void bad(const char *what)
{
    if (!w.bad++)
        cr_log_error("stress: %s", what);
}

/* After sn_done: when the call did not settle at once, the actor waits in `l`. */
static void maybe_waits(struct actor *a, int busy_state, struct line *l)
{
    if (a->state != busy_state)
        return;
    a->line = l;
    l->a[l->n++] = a;
}

/*
 * A call on line `l` succeeded or a wait settled: a success must come from the head of the
 * line, or, for a call that did not wait, find the line empty.
 */
static void left_line(struct actor *a, int err, struct line *l)
{
    if (a->line != l) {
        if (err == 0 && l->n)
            bad("a call was served while older waits were pending");
        return;
    }
    a->line = NULL;
    unsigned i = 0;
    while (i < l->n && l->a[i] != a)
        i++;
    if (i == l->n) {
        bad("a wait settled that was not waiting");
        return;
    }
    if (err == 0 && i != 0)
        bad("a wait was served before an older one");
    memmove(&l->a[i], &l->a[i + 1], (l->n - i - 1) * sizeof l->a[0]);
    l->n--;
}

/* ---- producers ---- */

static uint64_t item_of(const struct actor *p)
{
    return ((uint64_t)p->id << 40) | p->seq;
}

static void pushed(struct actor *p)
{
    p->seq++;
    w.pushed++;
}

static void push_done(void *arg, int err, uint64_t value)
{
    struct actor *p = arg;
    (void)value;
    if (p->state != BUSY)
        bad("push settled twice");
    left_line(p, err, &w.pushers);
    p->state = IDLE;
    if (err == 0)
        pushed(p);
    else if (err == -ETIMEDOUT)
        w.timeouts++;
    else if (err == -EPIPE || err == -ECANCELED)
        p->state = DONE;
    else
        bad("push failed");
}

static void step_producer(struct actor *p)
{
    if (p->state != IDLE)
        return;
    switch (rnd(3)) {
    case 0:
        p->state = BUSY;
        sn_done(sn_queue_push(w.q, item_of(p)), push_done, p);
        maybe_waits(p, BUSY, &w.pushers);
        break;
    case 1:
        p->state = BUSY;
        sn_done(sn_queue_push_for(w.q, item_of(p), (1 + rnd(20)) * SEC), push_done, p);
        maybe_waits(p, BUSY, &w.pushers);
        break;
    default: {
        int rc = sn_queue_try_push(w.q, item_of(p));
        left_line(p, rc, &w.pushers);
        if (rc == 0)
            pushed(p);
        else if (rc == -EPIPE)
            p->state = DONE;
        else if (rc != -EAGAIN)
            bad("try_push failed");
    }
    }
}

/* ---- consumers ---- */

static void got_item(struct actor *c, uint64_t item)
{
    unsigned from = (unsigned)(item >> 40);
    uint64_t seq = item & ((1ull << 40) - 1);
    if (from >= NPROD || seq != w.expect[from])
        bad("item out of order, lost or duplicated");
    else
        w.expect[from]++;
    w.received++;
    c->item = item;
    c->state = HAS_ITEM;
}

static void pop_done(void *arg, int err, uint64_t value)
{
    struct actor *c = arg;
    if (c->state != BUSY)
        bad("pop settled twice");
    left_line(c, err, &w.poppers);
    c->state = IDLE;
    if (err == 0)
        got_item(c, value);
    else if (err == -ETIMEDOUT)
        w.timeouts++;
    else if (err == -EPIPE || err == -ECANCELED)
        c->state = DONE;
    else
        bad("pop failed");
}

/* Units taken: the consumer works inside the gate, or gives them back once it is closed. */
static void hold(struct actor *c)
{
    int rc = sn_gate_enter(w.gate);
    if (rc == -ESHUTDOWN && w.gate_closed) {
        if (sn_semaphore_signal(w.sem, c->units) != 0)
            bad("signal failed");
        w.refused++;
        c->state = IDLE;
        return;
    }
    if (rc != 0)
        bad("gate enter failed");
    c->state = HOLDING;
    w.held += c->units;
}

static void acquire_done(void *arg, int err, uint64_t value)
{
    struct actor *c = arg;
    (void)value;
    if (c->state != ACQUIRING)
        bad("wait settled twice");
    left_line(c, err, &w.acquirers);
    c->state = HAS_ITEM;
    if (err == 0)
        hold(c);
    else if (err == -ETIMEDOUT)
        w.timeouts++;
    else if (err == -ECANCELED)
        c->state = DONE;
    else
        bad("semaphore wait failed");
}

static void release(struct actor *c)
{
    w.held -= c->units;
    if (sn_semaphore_signal(w.sem, c->units) != 0 || sn_gate_leave(w.gate) != 0)
        bad("release failed");
    c->state = IDLE;
    int woken = rnd(2) ? sn_event_notify_one(w.ev) : sn_event_notify_all(w.ev);
    if (woken < 0)
        bad("notify failed");
}

static void step_consumer(struct actor *c)
{
    switch (c->state) {
    case IDLE:
        if (rnd(3) == 2) {
            uint64_t item;
            int rc = sn_queue_try_pop(w.q, &item);
            left_line(c, rc, &w.poppers);
            if (rc == 0)
                got_item(c, item);
            else if (rc == -EPIPE)
                c->state = DONE;
            else if (rc != -EAGAIN)
                bad("try_pop failed");
            return;
        }
        c->state = BUSY;
        sn_done(rnd(2) ? sn_queue_pop(w.q) : sn_queue_pop_for(w.q, (1 + rnd(20)) * SEC), pop_done,
                c);
        maybe_waits(c, BUSY, &w.poppers);
        return;
    case HAS_ITEM:
        c->units = 1 + rnd(w.total_units);
        if (rnd(3) == 2) {
            int rc = sn_semaphore_try_wait(w.sem, c->units);
            left_line(c, rc, &w.acquirers);
            if (rc == 0)
                hold(c);
            else if (rc != -EAGAIN)
                bad("try_wait failed");
            return;
        }
        c->state = ACQUIRING;
        sn_done(rnd(2) ? sn_semaphore_wait(w.sem, c->units)
                       : sn_semaphore_wait_for(w.sem, c->units, (1 + rnd(20)) * SEC),
                acquire_done, c);
        maybe_waits(c, ACQUIRING, &w.acquirers);
        return;
    case HOLDING: release(c); return;
    default: return;
    }
}

/* ---- watchers ---- */

static void watch_done(void *arg, int err, uint64_t value)
{
    struct actor *a = arg;
    (void)value;
    if (a->state != BUSY)
        bad("event wait settled twice");
    left_line(a, err, &w.watchers);
    a->state = IDLE;
    if (err == 0)
        w.wakes++;
    else if (err == -ETIMEDOUT)
        w.timeouts++;
    else if (err == -ECANCELED)
        a->state = DONE;
    else
        bad("event wait failed");
}

static void step_watcher(struct actor *a)
{
    if (a->state != IDLE)
        return;
    a->state = BUSY;
    sn_done(rnd(2) ? sn_event_wait(w.ev) : sn_event_wait_for(w.ev, (1 + rnd(20)) * SEC), watch_done,
            a);
    maybe_waits(a, BUSY, &w.watchers);
}

/* ---- the driver ---- */

static unsigned count_state(const struct actor *a, unsigned n, int state)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        k += a[i].state == state;
    return k;
}

static void check_invariants(void)
{
    int64_t len = sn_queue_length(w.q);
    int64_t available = sn_semaphore_available(w.sem);
    if (available < 0 || w.held > w.total_units ||
        available + (int64_t)w.held != (int64_t)w.total_units)
        bad("units available + held != total");
    if (w.pushers.n != count_state(w.prod, NPROD, BUSY) ||
        w.poppers.n != count_state(w.cons, NCONS, BUSY) ||
        w.acquirers.n != count_state(w.cons, NCONS, ACQUIRING) ||
        w.watchers.n != count_state(w.watch, NWATCH, BUSY))
        bad("an actor waits that is not in its line");
    if (sn_gate_count(w.gate) != (int64_t)count_state(w.cons, NCONS, HOLDING))
        bad("gate count != consumers holding units");
    if (sn_semaphore_waiters(w.sem) != (int64_t)count_state(w.cons, NCONS, ACQUIRING))
        bad("semaphore waiters != consumers acquiring");
    if (sn_event_waiters(w.ev) != (int64_t)count_state(w.watch, NWATCH, BUSY))
        bad("event waiters != watchers waiting");
    if (len < 0 || len > (int64_t)w.cap)
        bad("queue length out of range");
    if (count_state(w.prod, NPROD, BUSY) && len != (int64_t)w.cap)
        bad("a push waits while the queue has room");
    if (count_state(w.cons, NCONS, BUSY) && len != 0)
        bad("a pop waits while the queue has items");
    if (w.received + (uint64_t)len != w.pushed)
        bad("items pushed != items popped + queued");
}

static void step(void)
{
    unsigned r = (unsigned)rnd(16);
    if (r < 6) {
        step_producer(&w.prod[rnd(NPROD)]);
    } else if (r < 12) {
        step_consumer(&w.cons[rnd(NCONS)]);
    } else if (r < 14) {
        step_watcher(&w.watch[rnd(NWATCH)]);
    } else if (r == 14) {
        w.virt_ns += rnd(4) * SEC;
        sn__timers_expire(&sched, sn_now_ns() + w.virt_ns);
    }
    sn__sched_run(&sched, 0);
    check_invariants();
}

static void init_actors(struct actor *a, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        a[i] = (struct actor){.state = IDLE, .id = i};
}

static void setup_world(uint32_t seed)
{
    memset(&w, 0, sizeof w);
    w.rng = seed;
    w.cap = 1 + (uint32_t)rnd(8);
    w.total_units = 1 + rnd(6);
    cr_assert_eq(sn_queue_create(w.cap, &w.q), 0);
    cr_assert_eq(sn_semaphore_create(w.total_units, &w.sem), 0);
    cr_assert_eq(sn_gate_create(&w.gate), 0);
    cr_assert_eq(sn_event_create(&w.ev), 0);
    init_actors(w.prod, NPROD);
    init_actors(w.cons, NCONS);
    init_actors(w.watch, NWATCH);
}

static void record_close(void *arg, int err, uint64_t value)
{
    (void)value;
    *(int *)arg = err == 0 ? 1 : -1;
}

static unsigned count_waiting(void)
{
    return count_state(w.prod, NPROD, BUSY) + count_state(w.cons, NCONS, BUSY) +
           count_state(w.cons, NCONS, ACQUIRING) + count_state(w.watch, NWATCH, BUSY);
}

/* The reactor's stop: every pending wait fails with -ECANCELED; the gate's close does not. */
static void stop_core(void)
{
    sched.stopping = true;
    sn__timers_cancel_all(&sched);
    sn__sync_cancel_all(&sched);
    sn__sched_run(&sched, 0);
    check_invariants();
    cr_assert_eq(count_waiting(), 0, "%u actors still wait after the stop", count_waiting());
    cr_assert(sn_list_empty(&sched.sync_waiting));
    cr_assert_eq(sched.timers.n, 0);
}

/* Closes the queue and drains it with try_pop: every item pushed must come out, in order. */
static void drain(void)
{
    int drained = 0;
    sn_done(sn_queue_close(w.q, -EPIPE), record_close, &drained);
    struct actor sink = {.state = IDLE};
    uint64_t item;
    int rc;
    while ((rc = sn_queue_try_pop(w.q, &item)) == 0)
        got_item(&sink, item);
    cr_assert_eq(rc, -EPIPE);
    cr_assert_eq(drained, 1, "the close future settles once the queue is empty");
    for (unsigned i = 0; i < NPROD; i++)
        cr_assert_eq(w.expect[i], w.prod[i].seq, "producer %u: %lu pushed, %lu received", i,
                     (unsigned long)w.prod[i].seq, (unsigned long)w.expect[i]);
}

static void run_stress(uint32_t seed, unsigned steps)
{
    setup_world(seed);
    for (unsigned i = 0; i < steps && !w.bad; i++)
        step();
    cr_assert_eq(w.bad, 0, "seed %u: invariant broken", seed);

    /* Shutdown as a server does it: close the gate with members inside and go on for a
     * while (new work is refused), then stop the core. */
    int gate_state = 0;
    w.gate_closed = true;
    sn_done(sn_gate_close(w.gate), record_close, &gate_state);
    cr_assert_eq(gate_state, count_state(w.cons, NCONS, HOLDING) ? 0 : 1);
    for (unsigned i = 0; i < steps / 10 && !w.bad; i++)
        step();
    cr_assert_eq(w.bad, 0, "seed %u: invariant broken after the gate closed", seed);
    stop_core();
    unsigned holding = count_state(w.cons, NCONS, HOLDING);
    cr_assert_eq(gate_state, holding ? 0 : 1, "the stop does not settle the gate's close");
    for (unsigned i = 0; i < NCONS; i++)
        if (w.cons[i].state == HOLDING)
            release(&w.cons[i]);
    cr_assert_eq(gate_state, 1, "the gate closes when the last member leaves");
    cr_assert_eq(sn_semaphore_available(w.sem), (int64_t)w.total_units);
    drain();
    cr_assert_eq(w.bad, 0, "seed %u: invariant broken at the end", seed);
    cr_log_info("seed %u: %lu items, %lu timeouts, %lu wakes, %lu refused by the gate", seed,
                (unsigned long)w.pushed, (unsigned long)w.timeouts, (unsigned long)w.wakes,
                (unsigned long)w.refused);
    cr_assert_gt(w.pushed, steps / 20, "seed %u: too little traffic", seed);
    cr_assert_gt(w.timeouts, 0, "seed %u: no timeout fired", seed);
    cr_assert_gt(w.wakes, 0, "seed %u: no event wake", seed);

    sched.stopping = false;
    sn_queue_destroy(w.q);
    sn_semaphore_destroy(w.sem);
    sn_gate_destroy(w.gate);
    sn_event_destroy(w.ev);
    sn__sched_run(&sched, 0);
    cr_assert_eq(sched.pool.in_use, 0, "seed %u: %lu pooled objects leaked", seed,
                 (unsigned long)sched.pool.in_use);
}

static void setup(void)
{
    cr_assert_eq(sn__sched_init(&sched, 0, NULL), 0);
    sn__sched_bind(&sched, 1);
}

static void teardown(void)
{
    sn__sched_bind(NULL, 0);
    sn__sched_destroy(&sched);
}

TestSuite(sync_stress, .init = setup, .fini = teardown);

/* 8 seeds x 100,000 steps (and 10,000 more after the gate closed): 880,000 random steps. */
Test(sync_stress, random_interleavings, .timeout = 120)
{
    for (uint32_t seed = 1; seed <= 8; seed++)
        run_stress(seed * 0x9e3779b9u, 100000);
}
