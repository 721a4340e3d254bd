/*
 * Internal: the reactor's per-core state and the runtime that holds every core. One struct
 * sn__core per reactor thread, allocated on its NUMA node; its sched comes first so the
 * scheduler bound to a thread leads straight to its core.
 *
 * Threads: everything in a core is touched by its own thread only, except the fields marked
 * "shared": the waker (senders), the inbox head (external threads), the published counters
 * and shutdown words (read by core 0 and by sn_metrics_core).
 */
#ifndef SN_REACTOR_CORE_H
#define SN_REACTOR_CORE_H

#include <sn/app.h>
#include <sn/config.h>
#include <sn/list.h>
#include <sn/mesh.h>
#include <sn/metrics.h>
#include <sn/reactor.h>
#include <sn/smp.h>

#include <pthread.h>
#include <stdatomic.h>

#include "core/sched.h"
#include "reactor/fiber_stack.h"
#include "reactor/signals.h"
#include "reactor/stall.h"
#include "reactor/topology.h"
#include "reactor/uring.h"
#include "reactor/wake.h"

struct sn__rt;

/*
 * Whether a core's batched sleeps keep pace (reactor/loop.c, sn__batch_pace_want): decayed
 * sums (in 1/256ths, each sleep weighing 1/8 less than the next) of the completions its
 * batched sleeps waited for and of those they woke with, the plain sleeps since its last
 * batched one, while behind the sleeps in a row with half a batch of connections active, and
 * whether the batched sleep under way is a probe. All zero: a fresh core, which batches.
 */
struct sn__batch_pace {
    uint64_t asked, found;
    unsigned plain, busy;
    bool probing;
};

/* Size classes of copied payloads with a pool of their own (reactor/smp_copy.c). */
#define SN__COPY_POOLS 3

/* An io_uring operation with a completion callback; see reactor/io.h. */
struct sn__io_op;

/* Counters written by the owner with relaxed single-writer stores, read by anyone. */
struct sn__counters {
    _Atomic uint64_t msgs_in, msgs_out, tasks, cqes, sleeps, wakeups_sent, stalls,
        stall_max_ns, preemptions, timers, external, loops, cancelled, pool_in_use,
        pool_capacity, fibers, fibers_spawned, fiber_stack_bytes, fiber_stack_high_water,
        batched_sleeps, batch_timeouts;
};

/* A node of the MPSC inbox (malloc'd by the sender, freed by the core). */
struct sn__ext {
    struct sn__ext *next;
    void (*fn)(void *arg);
    void *arg;
};

struct sn__core {
    struct sn__sched sched; /* first: sn__tls_sched leads to the core */
    unsigned id;
    struct sn__rt *rt;
    struct sn_mesh *mesh;
    struct sn__uring uring;
    bool uring_ok;
    bool waker_ok;
    struct sn__placement place;
    const struct sn_allocator *alloc;

    /* Cross-core calls waiting for a reply (doubly linked, for cancellation at the end). */
    struct sn_list calls; /* struct sn__call */
    uint64_t ncalls;
    /* Copy calls failed by the end of a run: their blocks are freed at teardown only, once
     * no core can still read the payload (reactor/smp_copy.c). */
    struct sn_list orphans;
    /* Blocks for copied payloads larger than a 64-byte pool block fits (smp_copy.c). */
    struct sn__pool copy_pools[SN__COPY_POOLS];
    /* Replies that met a full overflow and wait for the next turn. */
    struct sn__deferred *deferred_head, **deferred_tail;
    /* io_uring operations in flight (for the idle test and cancellation at stop). */
    struct sn_list ops; /* struct sn__io_op */
    uint64_t nops;
    bool ops_cancelled;
    uint64_t last_cancel_ns;

    /* Fibers: stacks, the overflow handler's stack, the shutdown deadline. */
    struct sn__stack_pool *stacks;
    struct sn__altstack altstack;
    uint64_t fiber_stop_timeout_ns;
    uint64_t stop_began_ns;

    /* Shutdown state of this core. */
    bool stop_req_seen;  /* saw the stop request (sn_when_stopped settled) */
    bool stop_seen;      /* entered stopping mode (timers disarmed, sends refused) */
    struct sn__waiters stopped; /* sn_when_stopped futures, settled at stop_req_seen */
    bool finishing;      /* the runtime decided it is over: drop sends */

    /* Loop state. */
    uint64_t idle_since_ns; /* first idle turn since the last work, 0: busy */
    struct sn__stall stall; /* stall.ns 0: detector off */
    uint64_t idle_poll_ns;  /* busy-poll limit after cross-core work */
    uint64_t io_poll_ns;    /* busy-poll limit after io_uring work only */
    unsigned io_batch_us;   /* --io-batch-us, 0: off */
    bool cross_core_recent; /* cross-core work since the last sleep */
    uint64_t poll_ns;       /* the poll limit of the current idle period */
    uint64_t idle_turns;    /* idle turns in a row (the clock is read every few of them) */

    /* Whether batched sleeps keep pace (loop.c, batch_want). */
    struct sn__batch_pace pace;

    /* shared: senders' view of this core. */
    struct sn__waker waker;
    SN_CACHE_ALIGNED _Atomic(struct sn__ext *) inbox;
    /* shared: published at every turn end for the shutdown check (core 0 reads). */
    SN_CACHE_ALIGNED _Atomic uint64_t pub_in, pub_out;
    _Atomic int pub_idle; /* 1: stopping mode and nothing left to do */
    struct sn__counters c;
};

struct sn__rt {
    unsigned ncores;
    struct sn_config cfg;
    sn_main_fn main_fn;
    void *main_arg;
    struct sn_mesh *mesh;
    struct sn__topology *topo;
    struct sn__placement *places;
    struct sn__core **cores;
    pthread_t *threads;
    pthread_barrier_t barrier;
    _Atomic int setup_err;  /* first set-up error of any core */
    _Atomic int stop_claim; /* 1 once an sn_stop call won the right to set exit_code */
    _Atomic int stop_req;   /* 1 once a stop was requested (exit_code is set before) */
    _Atomic int stop;       /* 1 once the cores shut down: at stop_req for sn_run, after the
                               app's stop hook for sn_app_run */
    _Atomic int exit_code;
    _Atomic int finished;   /* 1 once core 0 found every core idle with nothing in flight */
    struct sn__signals signals;
    bool signals_ok;
    bool stall_signal_ok;   /* the stall detector's signal handler is installed */
    const struct sn_app *app;       /* sn_app_run's app; NULL for sn_run */
    struct sn_partition *partition; /* sn_key_owner's: the app's, or a hash one we own */
    bool owns_partition;
    /* sn_app_run's lifecycle, touched by core 0 only (reactor/app.c). */
    int app_phase;
    bool app_stop_pending; /* a stop was requested while starting */
    bool app_failed;       /* start or stop failed: exit code 1 */
    uint64_t *snap[2];      /* core 0's two reads of every core's counters at shutdown */
};

/* External threads inside the library (sn_submit_external, sn_stop, sn_metrics_core). */
extern _Atomic int sn__ext_active;

/* Any thread: enters the library (returns the runtime) or NULL when none runs. */
struct sn__rt *sn__ext_enter(void);
void sn__ext_leave(void);

/* The running runtime (NULL when none), set before the cores start, cleared after join. */
extern struct sn__rt *_Atomic sn__rt_current;

/* The calling thread's core, or NULL. */
static inline struct sn__core *sn__core_self(void)
{
    return (struct sn__core *)sn__tls_sched;
}

/* The calling thread's core; aborts naming `fn` off a core (see sn__off_core). */
static inline struct sn__core *sn__core_here(const char *fn)
{
    return (struct sn__core *)sn__sched_here(fn);
}

/* Bumps a single-writer counter (owner only). */
static inline void sn__count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The exit code as a future's value (sn_when_stopped), once rt->stop_req is seen set. */
static inline uint64_t sn__exit_value(struct sn__rt *rt)
{
    /* Acquire on stop_req: exit_code was stored before it (sn__rt_request_stop). */
    (void)atomic_load_explicit(&rt->stop_req, memory_order_acquire);
    return (uint64_t)(int64_t)atomic_load_explicit(&rt->exit_code, memory_order_relaxed);
}

/* True once this core refuses new cross-core work. */
static inline bool sn__core_refuses(const struct sn__core *c)
{
    return c->stop_seen || atomic_load_explicit(&c->rt->stop, memory_order_relaxed);
}

/* reactor/smp.c */
/* sn_map_reduce; `force` lets library-internal calls through while the cores are stopping. */
struct sn_future *sn__map_reduce(sn_remote_fn fn, void *arg, uint64_t init,
                                 sn_reduce_fn reduce, void *reduce_arg, bool force);
/* Reducer counting the answers (sn_invoke_on_all's). */
uint64_t sn__reduce_count(void *arg, uint64_t acc, uint64_t value);
/* Sends `msg` from core `c` to `to` and counts it (replies bypass the refusal check). */
int sn__smp_send_msg(struct sn__core *c, unsigned to, const struct sn_msg *msg);
/* Retries replies that were deferred; true when some are still waiting. */
bool sn__smp_retry_deferred(struct sn__core *c);
/* Fails every call still waiting for a reply with -ECANCELED (the end of a run). */
void sn__smp_cancel_calls(struct sn__core *c);
/* Frees deferred replies that can no longer go anywhere (the end of a run). */
void sn__smp_drop_deferred(struct sn__core *c);

/* reactor/run.c */
/*
 * Requests a stop with exit code `code` (the first request's code wins). sn_run: the cores
 * shut down at once; sn_app_run: core 0 runs the stop hook first (reactor/app.c). Any thread.
 */
void sn__rt_request_stop(struct sn__rt *rt, int code);
/* Makes every core shut down now (after the app's stop hook, or a second signal). */
void sn__rt_shut_down(struct sn__rt *rt);
/* sn_run and sn_app_run: `app` NULL for sn_run. */
int sn__run(const struct sn_config *config, sn_main_fn main_fn, void *arg,
            const struct sn_app *app);

/* reactor/app.c, core 0 only */
/* Runs the app's start (a task queued when the cores are up). */
void sn__app_start(void *rt);
/* Core 0 saw the stop request: runs the stop hook once start has settled. */
void sn__app_stop_requested(struct sn__rt *rt);

/* reactor/loop.c */
/* io_uring completions handled per loop turn at most; the rest wait for the next turn. */
#define SN__LOOP_REAP_BUDGET 256
void sn__loop_run(struct sn__core *c);
/* One loop turn of core `c` (what sn__loop_run repeats); bench/bench_mesh_scale.c times it
 * on a core of its own making. Owner only. */
void sn__loop_turn(struct sn__core *c);
/* Refreshes the pool gauges of c's metrics (c's thread; exact at that moment). */
void sn__core_update_gauges(struct sn__core *c);
/* Wakes core `to` from core `c` (mesh flush callback, and sn_stop). */
void sn__loop_wake(void *ctx, unsigned to);

/* reactor/fiber_stop.c: fibers at shutdown (see include/sn/fiber.h). */
/* Stopping mode begins: starts the fibers' deadline. */
void sn__fiber_stop_begin(struct sn__core *c, uint64_t now);
/* Each stopping turn: past fiber_stop_timeout_ms, abandons the fibers still alive. */
void sn__fiber_stop_check(struct sn__core *c, uint64_t now);
/* The end of the run (after the calls were cancelled and what that woke ran): abandons the
 * fibers left, runs what that wakes, and frees their stacks. */
void sn__fiber_stop_finish(struct sn__core *c);
/* Refreshes the fiber gauges of c's counters. */
void sn__fiber_gauges(struct sn__core *c);

/* reactor/rlimit.c */
/* Raises the soft RLIMIT_NOFILE to the hard limit (sn_run, unless config.keep_nofile_limit).
 * 0, or -errno after a one-line warning on stderr; the run goes on either way. */
int sn__raise_nofile(void);

/* reactor/external.c */
/* Runs everything in c's inbox; returns how many ran. */
unsigned sn__inbox_drain(struct sn__core *c);
/* Frees what is left in c's inbox without running it (teardown). */
void sn__inbox_free(struct sn__core *c);

/*
 * The longest a batched sleep waits for `want` completions (reactor/loop.c): io_batch_us for
 * a full batch of SN_CONFIG_IO_BATCH_MAX, proportionally less for a smaller one (at least
 * 1 us), so each awaited completion is given io_batch_us / SN_CONFIG_IO_BATCH_MAX. A core
 * whose completions come further apart than that sees its batches time out and shrink (the
 * next batch asks for what came since the last sleep) until it stops batching; one whose
 * completions come faster fills them and keeps batching. 0 when io_batch_us is 0.
 */
static inline unsigned sn__batch_wait_us(unsigned io_batch_us, unsigned want)
{
    if (!io_batch_us)
        return 0;
    uint64_t us = (uint64_t)io_batch_us * want / SN_CONFIG_IO_BATCH_MAX;
    if (us > io_batch_us)
        us = io_batch_us;
    return us ? (unsigned)us : 1;
}

/* Plain sleeps after which a core whose batches fell behind may start batching again. */
#define SN__BATCH_RESTART_PLAIN 4
/* While behind, one sleep in this many plain ones is a probe: a batch of SN__BATCH_PROBE. */
#define SN__BATCH_PROBE_EVERY 256
#define SN__BATCH_PROBE       8

/*
 * Whether the batched sleeps found at least 3/4 of the completions they waited for, over the
 * last several (sn__batch_pace_note): completions that came at least one per 4/3 of
 * io_batch_us / SN_CONFIG_IO_BATCH_MAX, the time each is given.
 */
static inline bool sn__batch_pace_ok(const struct sn__batch_pace *p)
{
    return p->found * 4 >= p->asked * 3;
}

/* Records a batched sleep that waited for `want` completions and woke with `found`. A wake
 * with more than it waited for counts in full: under a closed loop such wakes make up for the
 * batches that timed out (capped at `want`, setup b of bench_httpd_ab.sh used 1.11x the CPU
 * per request, 7 rounds, 2026-12-06 01:33). */
static inline void sn__batch_pace_note(struct sn__batch_pace *p, unsigned want, unsigned found)
{
    if (p->probing && found >= want)
        p->asked = p->found = 0; /* the probe filled: batching starts again, judged afresh */
    p->probing = false;
    p->asked += ((uint64_t)want << 8) - (p->asked >> 3);
    p->found += ((uint64_t)found << 8) - (p->found >> 3);
    p->plain = 0;
}

/* Records a sleep that waited for one completion. */
static inline void sn__batch_pace_plain(struct sn__batch_pace *p)
{
    if (p->plain < SN__BATCH_PROBE_EVERY)
        p->plain++;
    p->probing = false; /* a probe the caller made a plain sleep is none */
}

/*
 * How many completions a sleep waits for, given that n connections received bytes since the
 * last sleep (reactor/loop.c, batch_want; the other reasons not to batch are the caller's):
 * n, at most SN_CONFIG_IO_BATCH_MAX, while the batched sleeps keep pace (sn__batch_pace_ok);
 * 1 (a plain sleep) when n < 2 or once they fall behind. A core that fell behind starts again
 * only when two sleeps in a row (not counting those with n < 2) have at least half a full
 * batch of connections active (n >= SN_CONFIG_IO_BATCH_MAX / 2), after at least
 * SN__BATCH_RESTART_PLAIN plain sleeps (sustained demand, not one burst or the backlog of the
 * last batch): the sums are cleared, so the new batches alone decide whether it goes on. A core that wakes for every completion
 * sees few connections active between two sleeps however fast they come (a closed-loop client
 * that the core outruns), so while behind, every SN__BATCH_PROBE_EVERY-th plain sleep with
 * n >= 2 is a probe instead: a batch of SN__BATCH_PROBE; if it fills (sn__batch_pace_note),
 * batching starts again, judged afresh. At a moderate load it rarely fills, and costs a wait
 * of at most SN__BATCH_PROBE x io_batch_us / SN_CONFIG_IO_BATCH_MAX once in that many sleeps.
 */
static inline unsigned sn__batch_pace_want(struct sn__batch_pace *p, unsigned n)
{
    if (n < 2)
        return 1; /* (not counted either way in a run of busy sleeps) */
    if (!sn__batch_pace_ok(p)) {
        p->busy = n < SN_CONFIG_IO_BATCH_MAX / 2 ? 0 : p->busy + 1;
        if (p->plain >= SN__BATCH_PROBE_EVERY) {
            p->probing = true;
            return SN__BATCH_PROBE;
        }
        if (p->busy < 2 || p->plain < SN__BATCH_RESTART_PLAIN)
            return 1;
        p->asked = p->found = 0;
        p->busy = 0;
    }
    return n > SN_CONFIG_IO_BATCH_MAX ? SN_CONFIG_IO_BATCH_MAX : n;
}

#endif
