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

/* Internal: the calling thread's core id plus one (0: not a core), and the core count. */
extern SN_API __thread unsigned sn__tls_core_id1;
extern SN_API unsigned sn__ncores;

/* The calling thread's core id, or SN_NO_CORE on a thread that is not a core. Any thread. */
static inline unsigned sn_core_id(void)
{
    return sn__tls_core_id1 - 1u;
}

/* Number of cores of the running reactor (0 when none runs). Any thread. */
static inline unsigned sn_core_count(void)
{
    return sn__ncores;
}

/* True on a thread that is a core (a reactor thread, or a test's bound scheduler). */
static inline bool sn_on_core(void)
{
    return sn__tls_core_id1 != 0;
}

struct sn_task;
typedef void (*sn_task_fn)(struct sn_task *self);

/* A unit of work on one core's run queue. Embed it; recover the container in `fn`. */
struct sn_task {
    struct sn_task *next;
    sn_task_fn fn;
};

static inline void sn_task_init(struct sn_task *t, sn_task_fn fn)
{
    t->next = NULL;
    t->fn = fn;
}

/*
 * Appends `t` to the calling core's run queue; it runs once, on this core, in a later part
 * of this loop turn or the next. `t` must not already be queued and must stay valid until
 * its fn is called (the caller owns it). Owner core only (the calling core's queue).
 */
SN_API void sn_schedule(struct sn_task *t);

/*
 * Runs fn(arg) once on the calling core from the run queue, using a record from the core's
 * pool (no malloc). 0, or -EPERM on a thread that is not a core (fn is then never called).
 */
SN_API int sn_later(void (*fn)(void *arg), void *arg);

SN_END_DECLS

#endif
