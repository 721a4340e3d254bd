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
 * Scheduling groups: CPU shares for kinds of work on each core (Seastar's scheduling_group,
 * Glommio's task queues). Every task runs in a group: tasks, continuations, sn_later
 * functions, timer callbacks and fibers run in the group of the code that created them
 * (queued them, attached them, armed them, spawned them), and a cross-core call runs on its
 * target in the caller's group, unless told otherwise (sn_schedule_in, sn_later_in, the
 * fiber option `group`). An io callback (a socket's or file's completion, and the user
 * callbacks it calls: on_data, on_datagram, ...) runs in the group of the code that started
 * the io; a connection's in the group of the code that opened it (sn_listen's caller for an
 * accepted one, sn_connect's). Code outside any of those (the first task of a run, message
 * handlers) runs in the main group, sn_sched_group_main().
 *
 * Each core runs, among its groups with queued tasks, the one that has had the least CPU
 * time per share (virtual run time), within the loop's task quota: two busy groups with
 * shares 100 and 300 get 25% and 75% of the time the core spends running tasks, and a group
 * with nothing queued costs nothing. An io callback of a group other than main is timed
 * (wall time) and charged to its group: its run time and its virtual run time, though not
 * counted as a task. Other work done outside tasks (message handlers, timer callbacks and
 * the continuations they run inline, main's io callbacks) is not charged to any group; put
 * heavy work in tasks. Groups are process-wide: created and destroyed on any thread, before a run
 * or during it, and used on every core.
 */
#define SN_SCHED_GROUPS_MAX     32      /* the main group included */
#define SN_SCHED_GROUP_NAME_MAX 32
#define SN_SCHED_MAX_SHARES     1000000u
#define SN_SCHED_DEFAULT_SHARES 1000u   /* the main group's */

struct sn_sched_group;

struct sn_sched_group_config {
    const char *name; /* copied (cut to SN_SCHED_GROUP_NAME_MAX - 1 bytes); NULL: "group" */
    unsigned shares;  /* 1 to SN_SCHED_MAX_SHARES */
};

/*
 * Makes a group in *out. 0, -EINVAL (NULL cfg or out, shares out of range), -ENOSPC
 * (SN_SCHED_GROUPS_MAX groups exist), -ENOMEM. Any thread.
 */
SN_API int sn_sched_group_create(const struct sn_sched_group_config *cfg,
                                 struct sn_sched_group **out);

/*
 * Frees g (NULL or the main group: nothing). Any thread, once no task of g is queued or
 * running on any core and nothing will start work in it (its id may be reused): that
 * includes io its code started (the callbacks run in the group), and the connections,
 * listeners and UDP sockets opened from it, which keep its group until they are closed.
 */
SN_API void sn_sched_group_destroy(struct sn_sched_group *g);

/* Changes g's shares (1 to SN_SCHED_MAX_SHARES); every core sees it at its next choice.
 * 0 or -EINVAL. Any thread. */
SN_API int sn_sched_group_set_shares(struct sn_sched_group *g, unsigned shares);

/* g's shares and name. Any thread. */
SN_API unsigned sn_sched_group_shares(const struct sn_sched_group *g);
SN_API const char *sn_sched_group_name(const struct sn_sched_group *g);

/* The main group (shares SN_SCHED_DEFAULT_SHARES, name "main"). Any thread. */
SN_API struct sn_sched_group *sn_sched_group_main(void);

/* The group of the code running now. Any reactor core; off a core it aborts. */
SN_API struct sn_sched_group *sn_sched_group_current(void);

/*
 * sn_schedule into group g (NULL: the current group, as sn_schedule): t runs in g, and so
 * does what it creates. Any reactor core; off a core it aborts.
 */
SN_API void sn_schedule_in(struct sn_sched_group *g, struct sn_task *t);

/*
 * sn_later in group g (NULL: the current group): fn runs in g, and what it starts (tasks,
 * continuations, timers, fibers, cross-core calls) runs in g too. 0, or -EPERM on a thread
 * that is not a core (fn is then never called). Any reactor core (the calling core's queue).
 */
SN_API int sn_later_in(struct sn_sched_group *g, void (*fn)(void *arg), void *arg);

/*
 * A future that resolves with value 0 in the timer phase of a later loop turn, after the
 * loop has flushed outgoing messages, drained incoming ones and reaped completions: the
 * way for a long producer (a loop of sn_send) to let the core breathe, and to retry after
 * -ENOBUFS. -ECANCELED once the reactor stops. Any reactor core (the future settles there).
 */
SN_API SN_MUST_USE struct sn_future *sn_yield(void);

SN_END_DECLS

#endif
