/*
 * Cores and tasks. Every reactor thread is one core, numbered 0 to sn_core_count() - 1, with
 * its own run queue of tasks: an intrusive FIFO that the loop runs with a time quota per turn.
 * A task is a struct the caller embeds in its own object, so queueing one allocates nothing.
 */
#ifndef SN_SCHED_H
#define SN_SCHED_H

#include <sn/common.h>

#include <limits.h>
#include <stdbool.h>

SN_BEGIN_DECLS

/* sn_core_id() on a thread that is not a reactor core. */
#define SN_NO_CORE UINT_MAX

/*
 * Internal: the calling thread's core id plus one (0: not a core). It stays an exported
 * thread-local variable read inline, not a function like sn_core_count(), because
 * sn_core_id() and sn_on_core() sit on hot paths (every future, every cross-core call):
 * measured here, a loop calling an exported function took 1.0 ns (libsn.a) to 1.3 ns
 * (libsn.so) per call against 0.25 ns for the inline read, which the compiler may also
 * hoist out of a loop.
 */
extern SN_API __thread unsigned sn__tls_core_id1;

/* The calling thread's core id, or SN_NO_CORE on a thread that is not a core. Any thread. */
static inline unsigned sn_core_id(void)
{
    return sn__tls_core_id1 - 1u;
}

/* Number of cores of the running reactor (0 when none runs). Any thread. */
SN_API unsigned sn_core_count(void);

/* True on a thread that is a core (a reactor thread, or a test's bound scheduler). */
static inline bool sn_on_core(void)
{
    return sn__tls_core_id1 != 0;
}

struct sn_future;
struct sn_task;
typedef void (*sn_task_fn)(struct sn_task *self);

/* A unit of work on one core's run queue. Embed it; recover the container in `fn` with
 * SN_CONTAINER_OF. Fields are libsn's while the task is queued. */
struct sn_task {
    struct sn_task *next;
    sn_task_fn fn;
};

/*
 * Prepares `t` to call fn(t) when it runs; call it before the first sn_schedule and again
 * to change fn (never while `t` is queued). Any thread (touches only `t`).
 */
static inline void sn_task_init(struct sn_task *t, sn_task_fn fn)
{
    t->next = NULL;
    t->fn = fn;
}

/*
 * Appends `t` to the calling core's run queue; it runs once, on this core, in a later part
 * of this loop turn or the next. `t` must not already be queued and must stay valid until
 * its fn is called (the caller owns it). Any reactor core (the calling core's queue); off a
 * core it aborts like the functions that return futures.
 */
SN_API void sn_schedule(struct sn_task *t);

/*
 * Runs fn(arg) once on the calling core from the run queue, using a record from the core's
 * pool (no malloc). 0, or -EPERM on a thread that is not a core (fn is then never called).
 */
SN_API int sn_later(void (*fn)(void *arg), void *arg);

/*
 * A future that resolves with value 0 in the timer phase of a later loop turn, after the
 * loop has flushed outgoing messages, drained incoming ones and reaped completions: the
 * way for a long producer (a loop of sn_send) to let the core breathe, and to retry after
 * -ENOBUFS. -ECANCELED once the reactor stops. Any reactor core (the future settles there).
 */
SN_API SN_MUST_USE struct sn_future *sn_yield(void);

SN_END_DECLS

#endif
