/*
 * Internal: one core's scheduler context: its run queue, its object pool, its timer heap and
 * the inline-continuation depth. The reactor makes one per core thread and binds it to the
 * thread (sn__sched_bind); a unit test may bind one to its own thread and drive it by hand.
 * Everything here is touched only by the owning thread.
 */
#ifndef SN_CORE_SCHED_H
#define SN_CORE_SCHED_H

#include <sn/list.h>
#include <sn/sched.h>
#include <sn/timer.h>

#include "core/fiber.h"
#include "core/pool.h"

#include <stdatomic.h>

/* Size of the blocks of a core's general pool: futures and every per-call record fit. */
#define SN__SCHED_OBJ_SIZE 64

struct sn__timers {
    struct sn_timer **heap; /* min-heap on deadline */
    uint32_t n, cap;
};

/*
 * The run tag of the code running now, carried by everything it leaves to run later
 * (continuations, sn_later, timers, fibers, cross-core requests): the scheduling group in
 * the low bits (step 3 of issue 16) and SN__TAG_SERVING while the code runs on behalf of a
 * request from another core, so the calls it makes are never held back by a service group's
 * cap (reactor/smp_service.c: the rule that keeps capped calls from deadlocking). Six bits
 * in all, so a request carries the tag as it is in its token's free low bits
 * (reactor/smp_internal.h): no re-encoding per call.
 */
#define SN__TAG_SERVING 0x20u
#define SN__TAG_GROUP   0x1fu /* SN_SCHED_GROUPS_MAX - 1 */
_Static_assert(SN_SCHED_GROUPS_MAX == SN__TAG_GROUP + 1, "a group id fits the tag's low bits");

/* Tasks run between clock reads while only one group is runnable. */
#define SN__SCHED_CLOCK_EVERY 16
/* Longest run of one group while others wait (then the choice is made again). */
#define SN__SCHED_SLICE_NS 50000u
/* Virtual run time: ns * SN__SCHED_VSCALE / shares. */
#define SN__SCHED_VSCALE 1024u

/*
 * One core's queue and accounts for one scheduling group (core/sched_group.c). Written by
 * the owning core only; the counters are read by other threads (relaxed).
 */
struct sn__gq {
    struct sn_task *head;
    struct sn_task **tail;
    uint64_t len;
    uint64_t vruntime; /* ns run * SN__SCHED_VSCALE / shares */
    uint64_t since;    /* when it last became runnable, or last ran with tasks left */
    const struct sn_sched_group *group; /* NULL: slot never used on this core */
    uint32_t serial;                    /* the group's serial when this core took the slot */
    _Atomic uint64_t run_ns, tasks, queue_len, wait_max_ns;
};

struct sn__sched {
    uint32_t active;      /* bit per group with queued tasks */
    uint64_t vmin;        /* virtual run time of the group picked last */
    uint64_t clock;       /* the last clock reading the scheduler saw (stamps `since`) */
    unsigned depth;       /* inline continuations currently nested */
    uint8_t tag;          /* the run tag of the code running now (SN__TAG_*) */
    unsigned id;          /* core id */
    bool stopping;        /* set by the reactor: timers refuse to arm */
    struct sn__pool pool;  /* SN__SCHED_OBJ_SIZE-byte blocks */
    struct sn__timers timers;
    struct sn_list sync_waiting; /* wait lists with waiters (core/sync_wait.c) */
    struct sn_list sync_pending; /* waits taken, not settled yet (core/sync_wait.c) */
    bool sync_settling;          /* sn__wake_settle's loop runs */
    uint64_t tasks_run;
    uint64_t timers_fired;
    uint64_t now;         /* the loop turn's time (sn__sched_now), 0: not read yet */
    void *owner;          /* the reactor's per-core state, opaque here */
    struct sn__fibers fibers;             /* core/fiber.c */
    struct sn__gq gq[SN_SCHED_GROUPS_MAX]; /* run queues, by group id (core/sched_group.c) */
};

/* The scheduler bound to the calling thread, NULL on a thread that is not a core. */
extern __thread struct sn__sched *sn__tls_sched;

/*
 * Prints "libsn: <fn> called off a reactor core" and aborts: calling a function that needs
 * a core (every one that returns a future) from another thread is a contract violation, as
 * an assert is in Seastar, not an error to return.
 */
__attribute__((noreturn, cold)) void sn__off_core(const char *fn);

/* The calling thread's scheduler; aborts through sn__off_core(fn) off a core. */
static inline struct sn__sched *sn__sched_here(const char *fn)
{
    struct sn__sched *s = sn__tls_sched;
    if (sn_unlikely(!s))
        sn__off_core(fn);
    return s;
}

/* Initialises `s` for core `id`, its pool chunks from `allocator` (NULL: default). 0 or -errno. */
int sn__sched_init(struct sn__sched *s, unsigned id, const struct sn_allocator *allocator);

/* Frees the pool and timer heap; queued tasks are dropped. */
void sn__sched_destroy(struct sn__sched *s);

/*
 * Makes `s` the calling thread's core (sn_core_id() == s->id), or unbinds with NULL.
 * `ncores` sets sn_core_count() unless 0.
 */
void sn__sched_bind(struct sn__sched *s, unsigned ncores);

/* Sets what sn_core_count() returns (the reactor, around a run). */
void sn__set_core_count(unsigned n);

/*
 * Runs queued tasks, group by group (core/sched_group.c), until no group has any or
 * `quota_ns` has passed (0: no limit). Returns the number run.
 */
unsigned sn__sched_run(struct sn__sched *s, uint64_t quota_ns);

/*
 * The time of the current loop turn: sn_now_ns() read at the first call in the turn (the
 * reactor clears it at every turn start), so everything that can do with the turn's time
 * (quota start, timer expiry, idle timeouts) costs one clock read per turn, not one each.
 * Never for deadlines that must not come early (timer arming reads the clock itself).
 */
static inline uint64_t sn__sched_now(struct sn__sched *s)
{
    if (!s->now)
        s->now = sn_now_ns();
    return s->now;
}

/* True when tasks are queued. */
static inline bool sn__sched_has_tasks(const struct sn__sched *s)
{
    return s->active != 0;
}

/* Single-writer counter update (owner only; others read relaxed). */
static inline void sn__sched_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Marks group `id` runnable (its queue just got its first task). core/sched_group.c. */
void sn__sched_activate(struct sn__sched *s, unsigned id);

/* Appends t to group id's queue on s. */
static inline void sn__sched_push(struct sn__sched *s, unsigned id, struct sn_task *t)
{
    struct sn__gq *q = &s->gq[id];
    t->next = NULL;
    *q->tail = t;
    q->tail = &t->next;
    if (q->len++ == 0)
        sn__sched_activate(s, id);
}

/* Makes g known to core s (fresh accounts when the slot last served another group) and
 * returns its id, the tag bits for it. */
uint8_t sn__sched_group_enter(struct sn__sched *s, const struct sn_sched_group *g);

/* The same for a group id that came from another core (the main group when that id is no
 * longer in use). */
uint8_t sn__sched_group_by_id(struct sn__sched *s, unsigned id);

/* Copies s's accounts of g (zeros when g never ran on s). */
struct sn_sched_group_metrics;
void sn__sched_group_stats(const struct sn__sched *s, const struct sn_sched_group *g,
                           struct sn_sched_group_metrics *out);

/* Charges group `id`'s accounts on this core with `ns` of work done outside its tasks (an io
 * callback, reactor/io.c): run time and virtual run time, no task. Owner core only. */
void sn__sched_charge(struct sn__sched *s, unsigned id, uint64_t ns);

static inline void *sn__sched_obj(struct sn__sched *s)
{
    return sn__pool_get(&s->pool);
}

static inline void sn__sched_obj_put(struct sn__sched *s, void *obj)
{
    sn__pool_put(&s->pool, obj);
}

/*
 * Futures (core/future.c): when `f` has settled and has no consumer, stores its outcome,
 * frees it and returns true (the fast path for code that would otherwise attach a
 * continuation to a ready future); else returns false and leaves `f` alone.
 */
struct sn_future;
bool sn__future_take(struct sn_future *f, int *err, uint64_t *value);

/*
 * Promises settled together, for "settles once the object is released" futures (closes,
 * sn_when_stopped): each waiter is a promise with a link from the core's pool. Zero is an
 * empty set. Touched by the owning core only.
 */
struct sn__waiter;
struct sn__waiters {
    struct sn__waiter *head, *last;
};

/* Adds a waiter and returns its future (pending). */
struct sn_future *sn__waiters_add(struct sn__waiters *w);

/* Settles every waiter, first added first, with err (0: success with value); empties `w`. */
void sn__waiters_settle(struct sn__waiters *w, int err, uint64_t value);

/* Timers of `s` (core/timer.c). */
int sn__timers_init(struct sn__timers *t);
void sn__timers_destroy(struct sn__timers *t);

/* Fires every timer whose deadline is at or before `now`; returns how many fired. */
unsigned sn__timers_expire(struct sn__sched *s, uint64_t now);

/* Earliest armed deadline, or UINT64_MAX when none is armed. */
static inline uint64_t sn__timers_next(const struct sn__sched *s)
{
    return s->timers.n ? s->timers.heap[0]->deadline : UINT64_MAX;
}

/* Disarms every timer without firing it; sleep futures fail with -ECANCELED. */
void sn__timers_cancel_all(struct sn__sched *s);

/* Fails every pending semaphore, event and queue wait with -ECANCELED (core/sync_wait.c). */
void sn__sync_cancel_all(struct sn__sched *s);

#endif
