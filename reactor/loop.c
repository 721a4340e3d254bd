/*
 * One core's event loop (docs/ARCHITECTURE.md, "Reactor"). A turn:
 *   1. drain incoming mesh messages and the external inbox;
 *   2. run ready tasks until the queue is empty or the quota is spent;
 *   3. flush outgoing mesh batches, waking targets that sleep;
 *   4. submit SQEs and reap CQEs without blocking, running their callbacks (at most
 *      SN__LOOP_REAP_BUDGET per turn, so a stream of completions cannot hold the core);
 *   5. expire timers;
 *   6. after a poll time of no work: announce sleep, re-check, block in io_uring until a CQE,
 *      a wake-up or the next timer (with --io-batch-us, after requests on several
 *      connections: until a batch of CQEs, or the batch's time passed with one; batch_want,
 *      sn__batch_wait_us; see "Batches" below).
 *      The poll time is idle_poll after cross-core work since
 *      the last sleep (or with calls waiting for a reply): the next message is seen at once
 *      by a polling core, while a sleeping one needs a wake-up. After io_uring work only it
 *      is io_poll (0 by default): the kernel wakes the core when io completes, and polling
 *      for it costs CPU time that a request would otherwise not cost. A polling core calls
 *      sched_yield() every IDLE_YIELD_EVERY idle turns, so a thread that shares its CPU (a
 *      client, another process) runs within microseconds instead of waiting for the
 *      kernel's time slice to end; with nothing else runnable the call returns at once.
 * Batches (--io-batch-us N): a sleep after requests on n > 1 connections since the last one
 * waits for n completions (at most 32), giving each N/32 us, so a batch of n waits at most
 * n/32 of N. Batching pays only while the batches fill: then one wake-up serves many
 * requests. When completions come further apart, every batch holds its first requests for
 * most of its time, and the next one, sized by what came while the last was being run, is
 * as large again (an open-loop load near 60% of a core kept batching so, adding ~150 us to
 * the median response). So a core batches only while its batched sleeps keep pace: over the
 * last several of them (a sum that forgets 1/8 per batched sleep) they found at least 3/4 of
 * the completions they waited for, i.e. completions came at least one per 4/3 x N/32 us.
 * Under a load that fills batches (wrk's closed loop: the next requests arrive while the
 * core waits) they keep pace at every size; under a moderate open-loop load they fall behind
 * within a few. Once behind, a core sleeps plainly and starts again only when, after at
 * least 4 plain sleeps, two sleeps in a row have half a full batch (16) of connections active
 * since the previous: neither the backlog of the last batch nor one burst restarts it,
 * sustained demand does, and the new batches are judged afresh; and, since a core that wakes
 * for every completion sees few connections active between sleeps however fast they come
 * (a closed-loop client it outruns), every 256th plain sleep is a probe, a batch of 8, that
 * restarts batching when it fills (sn__batch_pace_want in reactor/core.h).
 * Each phase that did work is timed on the coarse clock; one longer than --stall-ms gets a
 * verdict from the thread's CPU time: a stall (reported with the core, the phase and a
 * backtrace of what ran, at most once a second per core) or a preemption (counted). See
 * reactor/stall.h.
 *
 * Shutdown: once sn_stop was called, each core enters stopping mode at a turn boundary
 * (timers disarmed, new cross-core work refused, io cancelled) and from then on publishes,
 * at every turn, whether it is idle and how many messages it has sent and handled. Core 0
 * ends the run when two consecutive reads of every core agree: all idle, no external caller
 * inside the library, no inbox entry, and as many messages handled as sent. A core clears
 * its idle word at the start of every turn, before touching any input, so work caused by a
 * message is always visible either as a busy core or as a changed count.
 */
#include "reactor/smp_internal.h"
#include "reactor/io.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRAIN_BUDGET     4096
#define TASK_QUOTA_NS    500000ull   /* 0.5 ms of tasks per turn, as in Seastar */
#define BACKLOG_WAIT_NS  1000000ull  /* a core with overflow must retry its flush soon */
#define STOPPING_WAIT_NS 1000000ull  /* core 0 re-checks the shutdown this often */
#define CANCEL_RETRY_NS  10000000ull /* re-cancel io started during stopping */
#define CQE_BATCH        64          /* CQEs copied out of the ring at a time */
#define REAP_BUDGET      SN__LOOP_REAP_BUDGET
#define IDLE_CLOCK_EVERY 64  /* idle turns per precise clock read while polling */
#define IDLE_YIELD_EVERY 256 /* idle turns per sched_yield while polling */

void sn__loop_wake(void *ctx, unsigned to)
{
    struct sn__core *c = ctx;
    sn__wake_from_reactor(&c->uring, &c->rt->cores[to]->waker);
    sn__count(&c->c.wakeups_sent, 1);
}

/*
 * A boundary between phases, at coarse time `now` (reactor/stall.h): the first one of each
 * clock tick re-arms the CPU-time measurement from here.
 */
static inline void stall_boundary(struct sn__core *c, uint64_t now)
{
    if (sn_unlikely(now != c->stall.ck_coarse))
        sn__stall_checkpoint(&c->stall, now);
}

/*
 * Ends a phase that did work: one that took --stall-ms on the coarse clock gets a verdict
 * (stall or preemption, from the thread's CPU time). Returns the time.
 */
static uint64_t phase_end(struct sn__core *c, uint64_t start, const char *what)
{
    if (!c->stall.ns)
        return 0;
    uint64_t now = sn__coarse_ns();
    uint64_t took = now - start;
    if (sn_unlikely(took >= c->stall.ns))
        sn__stall_verdict(c, took, now, what);
    else
        stall_boundary(c, now);
    return now;
}

/*
 * Handles the completions waiting in the CQ, at most REAP_BUDGET per turn, and never enters
 * the kernel: the io phase already did (see io_phase). Looping until the CQ stays empty let a
 * peer that keeps streaming hold the core in this phase indefinitely (liburing's peek enters
 * the kernel again whenever task work is pending, and each entry posts new completions),
 * starving tasks, timers and the mesh. What is left waits for the next turn (has_work sees
 * it, so the core does not sleep meanwhile).
 */
static unsigned reap(struct sn__core *c)
{
    struct io_uring *ring = &c->uring.ring;
    unsigned total = 0;

    while (total < REAP_BUDGET) {
        /* Copy, then release the CQ slots, so callbacks may submit and reap freely. */
        struct {
            uint64_t ud;
            int res;
            uint32_t flags;
        } done[CQE_BATCH];
        struct io_uring_cqe *cqe;
        unsigned head, n = 0, keep = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            if (sn__ud_is_reserved(cqe->user_data)) {
                if (!sn__waker_handle_cqe(&c->waker, &c->uring, cqe) && c->id == 0 &&
                    c->rt->signals_ok)
                    sn__signals_handle_cqe(&c->rt->signals, &c->uring, cqe);
            } else {
                done[keep].ud = cqe->user_data;
                done[keep].res = cqe->res;
                done[keep].flags = cqe->flags;
                keep++;
            }
            if (++n == CQE_BATCH)
                break;
        }
        if (!n)
            break;
        io_uring_cq_advance(ring, n);
        for (unsigned i = 0; i < keep; i++)
            sn__io_complete(c, done[i].ud, done[i].res, done[i].flags);
        total += n;
    }
    if (total)
        sn__count(&c->c.cqes, total);
    return total;
}

/*
 * Submits the SQEs queued this turn and, unless the CQ still holds completions left over by
 * the last turn's budget, collects finished work from the kernel (DEFER_TASKRUN runs it only
 * then). While a backlog is being worked off the kernel keeps the rest as task work instead
 * of posting it into a CQ that may have no room: a multishot operation whose completion finds
 * the CQ full is ended by the kernel.
 */
static void io_phase(struct sn__core *c)
{
    struct io_uring *ring = &c->uring.ring;

    if (sn_likely(!io_uring_cq_ready(ring)))
        sn__uring_submit_and_poll(&c->uring);
    else if (io_uring_sq_ready(ring))
        io_uring_submit(ring);
}

static bool inbox_busy(const struct sn__core *c)
{
    return atomic_load_explicit(&c->inbox, memory_order_relaxed) != NULL;
}

/* Anything that would make a turn do work right now. */
static bool has_work(struct sn__core *c)
{
    return sn__sched_has_tasks(&c->sched) || sn_mesh_pending(c->mesh, c->id) || inbox_busy(c) ||
           c->deferred_head || io_uring_cq_ready(&c->uring.ring) ||
           (!c->stop_req_seen && atomic_load(&c->rt->stop_req)) ||
           (!c->stop_seen && atomic_load(&c->rt->stop)) || atomic_load(&c->rt->finished);
}

/*
 * A stop was requested: sn_when_stopped futures settle while the core still runs normally,
 * and core 0 starts the app's stop hook (sn_app_run). The shutdown itself starts when
 * rt->stop is set: at once for sn_run, after the hook for an app.
 */
static void see_stop_request(struct sn__core *c)
{
    c->stop_req_seen = true;
    sn__waiters_settle(&c->stopped, 0, sn__exit_value(c->rt));
    if (c->id == 0 && c->rt->app)
        sn__app_stop_requested(c->rt);
}

static void enter_stopping(struct sn__core *c)
{
    c->stop_seen = true;
    c->sched.stopping = true;
    sn__timers_cancel_all(&c->sched);
    sn__sync_cancel_all(&c->sched);
    if (c->nops)
        sn__io_cancel_all(c);
    c->last_cancel_ns = sn_now_ns();
    if (!c->stop_req_seen)
        see_stop_request(c);
    sn__fiber_stop_begin(c, c->last_cancel_ns);
}

/* Stopping mode: what this core tells core 0 at the end of each turn. */
static void publish(struct sn__core *c)
{
    bool idle = !sn__sched_has_tasks(&c->sched) && !sn_mesh_pending(c->mesh, c->id) &&
                !inbox_busy(c) && !c->deferred_head && !sn_mesh_backlog(c->mesh, c->id) &&
                c->nops == 0;
    atomic_store(&c->pub_in, atomic_load_explicit(&c->c.msgs_in, memory_order_relaxed));
    atomic_store(&c->pub_out, atomic_load_explicit(&c->c.msgs_out, memory_order_relaxed));
    atomic_store(&c->pub_idle, idle);
}

/* One read of every core; true when all are idle with no message in flight. */
static bool quiet_pass(struct sn__rt *rt, uint64_t *snap)
{
    uint64_t in = 0, out = 0;
    if (atomic_load(&sn__ext_active))
        return false;
    for (unsigned i = 0; i < rt->ncores; i++) {
        struct sn__core *k = rt->cores[i];
        if (!atomic_load(&k->pub_idle) || atomic_load(&k->inbox))
            return false;
        snap[2 * i] = atomic_load(&k->pub_in);
        snap[2 * i + 1] = atomic_load(&k->pub_out);
        in += snap[2 * i];
        out += snap[2 * i + 1];
    }
    return in == out;
}

static void check_finished(struct sn__core *c)
{
    struct sn__rt *rt = c->rt;
    size_t bytes = 2 * rt->ncores * sizeof(uint64_t);
    if (!quiet_pass(rt, rt->snap[0]) || !quiet_pass(rt, rt->snap[1]) ||
        memcmp(rt->snap[0], rt->snap[1], bytes) != 0)
        return;
    atomic_store(&rt->finished, 1);
    for (unsigned i = 0; i < rt->ncores; i++)
        if (i != c->id)
            sn__wake_from_thread(&rt->cores[i]->waker);
}

/*
 * How many completions a sleep waits for (--io-batch-us): as many as connections received
 * bytes since the last sleep (at most SN_CONFIG_IO_BATCH_MAX), so a core serving one busy
 * connection (a client with one request in flight) keeps waking at the first completion,
 * while one serving many lets their next requests gather before it runs them, as long as its
 * batches keep pace (sn__batch_pace_want: see the top of this file). 1 (no batch) when
 * batching is off or the kernel lacks the minimum wait, after cross-core work (a message
 * would wait for the batch too), and while stopping.
 */
static unsigned batch_want(struct sn__core *c)
{
    unsigned n = sn__net_take_active(); /* also starts the next count */
    if (!c->io_batch_us || !(c->uring.features & SN__URING_MIN_WAIT) || c->cross_core_recent ||
        c->ncalls || c->deferred_head || c->stop_seen)
        return 1;
    return sn__batch_pace_want(&c->pace, n);
}

/*
 * A batched sleep: until `want` completions, or the batch's time (sn__batch_wait_us) passed
 * with at least one, or `wait_ns` (the next timer). One that woke with some completions but
 * fewer than it asked for ran out of the batch's time: counted in batch_timeouts (a wait that
 * a timer or a signal ended with none is not a batch that timed out, but it found nothing in
 * the batch's time, and the pace counts it so).
 */
static void sleep_batched(struct sn__core *c, unsigned want, unsigned batch_us, uint64_t wait_ns)
{
    sn__count(&c->c.batched_sleeps, 1);
    if (sn__uring_wait_batch(&c->uring, want, batch_us, wait_ns) == -EINVAL) {
        c->io_batch_us = 0; /* the kernel refused the minimum wait: sleep plainly */
        return;
    }
    unsigned ready = io_uring_cq_ready(&c->uring.ring);
    if (ready && ready < want)
        sn__count(&c->c.batch_timeouts, 1);
    sn__batch_pace_note(&c->pace, want, ready);
}

static void sleep_now(struct sn__core *c, uint64_t now)
{
    sn_mesh_flush(c->mesh, c->id, sn__loop_wake, c);
    sn_mesh_sleep_announce(c->mesh, c->id);
    sn__waker_sleep_begin(&c->waker);
    if (!has_work(c)) {
        uint64_t wait = UINT64_MAX;
        uint64_t next = sn__timers_next(&c->sched);
        if (next != UINT64_MAX)
            wait = next > now ? next - now : 0;
        if (sn_mesh_backlog(c->mesh, c->id) && wait > BACKLOG_WAIT_NS)
            wait = BACKLOG_WAIT_NS;
        if (c->stop_seen && (c->id == 0 || c->nops) && wait > STOPPING_WAIT_NS)
            wait = STOPPING_WAIT_NS;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait / 1000000000u),
                                       .tv_nsec = (long long)(wait % 1000000000u)};
        unsigned want = batch_want(c);
        unsigned batch_us = sn__batch_wait_us(c->io_batch_us, want);
        sn__count(&c->c.sleeps, 1);
        /* A timer due before the batch time would wait for it: then sleep plainly. */
        if (want > 1 && wait > (uint64_t)batch_us * 1000u) {
            sleep_batched(c, want, batch_us, wait);
        } else {
            sn__batch_pace_plain(&c->pace);
            io_uring_submit_and_wait_timeout(&c->uring.ring, &cqe, 1,
                                             wait == UINT64_MAX ? NULL : &ts, NULL);
        }
    }
    sn__waker_sleep_end(&c->waker);
    sn_mesh_sleep_cancel(c->mesh, c->id);
    c->idle_since_ns = 0; /* poll again before the next sleep */
    c->cross_core_recent = false;
}

/*
 * How long an idle core busy-polls before it sleeps: idle_poll while cross-core work is
 * about (since the last sleep, or still expected: calls waiting for replies, replies or
 * messages waiting for room), else io_poll.
 */
static uint64_t poll_limit(struct sn__core *c)
{
    if (c->cross_core_recent || c->ncalls || c->deferred_head || sn_mesh_backlog(c->mesh, c->id))
        return c->idle_poll_ns;
    return c->io_poll_ns;
}

/* Per-turn gauges are refreshed once per this many turns (and before sleeping). */
#define GAUGE_EVERY 1024

void sn__core_update_gauges(struct sn__core *c)
{
    uint64_t in_use = c->sched.pool.in_use + sn__copy_pools_in_use(c);
    uint64_t capacity = c->sched.pool.capacity + sn__copy_pools_capacity(c);
    atomic_store_explicit(&c->c.pool_in_use, in_use, memory_order_relaxed);
    atomic_store_explicit(&c->c.pool_capacity, capacity, memory_order_relaxed);
    sn__fiber_gauges(c);
}

void sn__loop_turn(struct sn__core *c)
{
    uint64_t t = 0;
    unsigned work = 0, cross = 0, n;

    c->sched.now = 0; /* a new turn: the clock is read again when first needed */
    if (c->stall.ns) {
        t = sn__coarse_ns();
        stall_boundary(c, t);
    }

    if (c->stop_seen)
        atomic_store(&c->pub_idle, 0);
    if ((n = sn_mesh_drain(c->mesh, c->id, DRAIN_BUDGET))) {
        cross += n;
        t = phase_end(c, t, "handling messages");
    }
    if (inbox_busy(c) && (n = sn__inbox_drain(c))) {
        cross += n;
        t = phase_end(c, t, "external calls");
    }
    if (sn__sched_has_tasks(&c->sched)) {
        n = sn__sched_run(&c->sched, TASK_QUOTA_NS);
        sn__count(&c->c.tasks, n);
        work += n;
        t = phase_end(c, t, "tasks");
    }
    if (c->deferred_head)
        sn__smp_retry_deferred(c);
    cross += sn_mesh_flush(c->mesh, c->id, sn__loop_wake, c);
    work += cross;
    io_phase(c);
    if (io_uring_cq_ready(&c->uring.ring) && (n = reap(c))) {
        work += n;
        t = phase_end(c, t, "io completions");
    }
    /* The turn's time only when a timer is armed, or on every 64th idle turn (below). */
    uint64_t now = 0;
    if (c->sched.timers.n && sn__timers_next(&c->sched) <= (now = sn__sched_now(&c->sched))) {
        c->sched.clock = now; /* what tasks queued by the timers count their wait from */
        n = sn__timers_expire(&c->sched, now);
        sn__count(&c->c.timers, n);
        work += n;
        phase_end(c, t, "timers");
    }
    uint64_t turns = atomic_load_explicit(&c->c.loops, memory_order_relaxed) + 1;
    atomic_store_explicit(&c->c.loops, turns, memory_order_relaxed);
    if (turns % GAUGE_EVERY == 0)
        sn__core_update_gauges(c);

    if (sn_unlikely(!c->stop_req_seen &&
                    atomic_load_explicit(&c->rt->stop_req, memory_order_relaxed))) {
        see_stop_request(c);
        work++;
    }
    if (sn_unlikely(!c->stop_seen && atomic_load_explicit(&c->rt->stop, memory_order_relaxed))) {
        enter_stopping(c);
        work++;
    }
    if (sn_unlikely(c->stop_seen)) {
        if (!now)
            now = sn__sched_now(&c->sched);
        if (c->nops && now - c->last_cancel_ns >= CANCEL_RETRY_NS) {
            sn__io_cancel_all(c);
            c->last_cancel_ns = now;
        }
        sn__fiber_stop_check(c, now);
        publish(c);
        if (c->id == 0)
            check_finished(c);
    }
    if (work) {
        c->idle_since_ns = 0; /* busy: the idle clock starts at the next idle turn */
        c->cross_core_recent |= cross != 0;
        c->idle_turns = 0;
        return;
    }
    /*
     * A polling core reads the precise clock only every IDLE_CLOCK_EVERY idle turns: the read
     * costs 20-80 ns (kvm-clock), several times the rest of an idle turn, and every turn spent
     * in it delays seeing the next message (measured: the cross-core round trip, see
     * docs/PERFORMANCE.md). The idle clock so starts up to that many turns late, which only
     * makes idle_poll a few hundred ns longer. idle_poll 0 (sleep at once) still reads it.
     */
    if (!c->idle_turns++)
        c->poll_ns = poll_limit(c); /* what the idle period's first turn sees holds for it */
    if (c->idle_turns % IDLE_CLOCK_EVERY && c->poll_ns && !now)
        return;
    if (c->poll_ns && c->idle_turns % IDLE_YIELD_EVERY == 0)
        sched_yield(); /* see the top: polling never holds the CPU from a runnable thread */
    if (!now)
        now = sn__sched_now(&c->sched);
    if (!c->idle_since_ns)
        c->idle_since_ns = now;
    else if (now - c->idle_since_ns >= c->poll_ns) {
        sn__core_update_gauges(c);
        sleep_now(c, now);
    }
}

void sn__loop_run(struct sn__core *c)
{
    c->idle_since_ns = 0;
    while (!atomic_load_explicit(&c->rt->finished, memory_order_acquire))
        sn__loop_turn(c);

    /* The run is over: nothing is in flight between cores. Settle what still waits. */
    c->finishing = true;
    sn__smp_cancel_calls(c);
    while (sn__sched_has_tasks(&c->sched))
        sn__count(&c->c.tasks, sn__sched_run(&c->sched, 0));
    sn__fiber_stop_finish(c);
    sn__smp_drop_deferred(c);
}
