/*
 * Fibers: straight-line code on a reactor core. A fiber is a function running on its own
 * stack as a task of the core that spawned it; it never migrates to another core. Inside a
 * fiber, sn_await(f, &value) suspends only the fiber until the future f settles, while the
 * loop goes on with everything else; when f has already settled it returns at once, with no
 * switch at all. Every future libsn makes can be awaited: cross-core calls, timers, files,
 * connect and listen, sharded services, when_all, promises, other fibers.
 *
 *     static int handle(void *arg, uint64_t *value)
 *     {
 *         uint64_t n;
 *         int err = sn_await(sn_submit_to(1, count_on_core_1, arg), &n);
 *         if (err)
 *             return err;                 // the fiber's future fails with err
 *         err = sn_fiber_sleep_ns(1000000); // 1 ms, only this fiber waits
 *         *value = n;
 *         return err;                     // 0: the future succeeds with *value
 *     }
 *     ...
 *     sn_done(sn_fiber_spawn(handle, arg, NULL), report, NULL);  // or sn_await from a fiber
 *
 * A fiber is a consumer of futures, not a second scheduler: a settled future resumes the
 * fiber from the core's run queue (a task), never inline inside whatever settled it.
 *
 * What a fiber must not do: block the thread. A blocking system call (read on a socket,
 * sleep, nanosleep, pthread_mutex_lock on a contended lock, a blocking DNS lookup) stops the
 * whole core, every fiber and callback on it included. Use libsn's futures instead:
 * sn_fiber_sleep_ns rather than sleep, sn_file_* rather than read/write on files, sn_connect
 * and connection callbacks rather than blocking sockets, sn_submit_to or sn_submit_external
 * to hand blocking work to a thread that is not a core.
 *
 * Stacks: each fiber has its own stack, SN_FIBER_DEFAULT_STACK (64 KiB) usable unless the
 * spawn asks for another size, taken from the core's pool of mmap'd stacks with a guard
 * region below each, and returned to the pool when the fiber ends. Only the pages a fiber
 * touches cost memory (an idle fiber costs about one page). Running into the guard region
 * prints "libsn: fiber <name> on core N overflowed its <size>-byte stack" and aborts the
 * process. Floating-point control state (rounding mode, exception masks) belongs to the
 * thread, not to a fiber: a fiber that changes it must restore it before it suspends.
 *
 * Shutdown (see include/sn/reactor.h): once the reactor stops, waits that can be cancelled
 * fail with -ECANCELED (sleeps, timers, io, the waits of include/sn/sync.h, new cross-core
 * calls; calls still waiting for a remote future that never settles fail at the end of the
 * run), sn_fiber_yield returns -ECANCELED, and fibers are expected to return. A fiber still
 * alive when the run ends (waiting for a future nothing can settle any more), or still running
 * sn_config.fiber_stop_timeout_ms after the stop began, is reported on stderr by name and
 * abandoned: it is never resumed again, its future fails with -ECANCELED, its stack is freed
 * with the core's pool without unwinding, and whatever it owned is leaked.
 *
 * Threads: every function here is for reactor cores (the fiber's own core); see each.
 */
#ifndef SN_FIBER_H
#define SN_FIBER_H

#include <sn/common.h>

#include <stdbool.h>

struct sn_sched_group;

SN_BEGIN_DECLS

struct sn_future;

/* Usable stack bytes of a fiber whose spawn does not choose (sn_fiber_opts.stack_size 0). */
#define SN_FIBER_DEFAULT_STACK (64u * 1024u)
/* Smallest usable stack: smaller requests are rounded up to it. */
#define SN_FIBER_MIN_STACK (16u * 1024u)
/* Largest usable stack: larger requests fail with -EINVAL. */
#define SN_FIBER_MAX_STACK (1024u * 1024u * 1024u)
/* Room for a fiber's name, with its NUL: longer names are cut to SN_FIBER_NAME_MAX - 1 bytes. */
#define SN_FIBER_NAME_MAX 32

/*
 * sn_fiber_opts.flags: paint the stack at spawn and measure its high-water mark when the
 * fiber ends (into *stack_used, and the core's fiber_stack_high_water metric). It costs a
 * write of the whole stack per spawn, which also makes every page of it resident, so use it
 * to size stacks, not in production. Env SN_FIBER_STACK_CHECK=1 at sn_run turns it on for
 * every fiber of the run.
 */
#define SN_FIBER_MEASURE_STACK 1u

/*
 * The body of a fiber: returns 0 or a negative errno, and may set *value (0 beforehand); the
 * fiber's future settles with them, as an sn_call_fn's result does.
 */
typedef int (*sn_fiber_fn)(void *arg, uint64_t *value);

/* How to spawn a fiber; zero-initialise it and set what you need (NULL opts: all defaults). */
struct sn_fiber_opts {
    /*
     * For error messages, shutdown reports, sn_fiber_name and debuggers. Copied at spawn (cut
     * to SN_FIBER_NAME_MAX - 1 bytes), so it need not outlive the call. NULL: "fiber".
     */
    const char *name;
    /*
     * Usable stack bytes (the guard region comes on top), rounded up to whole pages and to
     * at least SN_FIBER_MIN_STACK. 0: SN_FIBER_DEFAULT_STACK.
     */
    size_t stack_size;
    /* SN_FIBER_MEASURE_STACK, or 0. Other bits are reserved for later hints: leave them 0. */
    unsigned flags;
    /* The scheduling group the fiber runs in (include/sn/sched.h); NULL: the spawner's. */
    struct sn_sched_group *group;
    /*
     * With SN_FIBER_MEASURE_STACK (or SN_FIBER_STACK_CHECK=1): when not NULL, receives the
     * most stack the fiber ever used, in bytes, when it ends (before its future settles).
     * Must stay valid until then.
     */
    size_t *stack_used;
};

/*
 * Starts fn(arg) as a fiber on the calling core: it begins from the run queue, after the
 * caller's current task. Returns its future, which settles with fn's result when fn returns
 * (drop it with sn_ignore to let the fiber run detached). `arg` is passed as is; libsn never
 * touches it. The future fails with -EINVAL (fn NULL, bad flags, stack_size over
 * SN_FIBER_MAX_STACK) or -ENOMEM (no stack: memory or mappings exhausted), and fn never runs.
 * Owner core only (any reactor core, inside a fiber or not); off a core it prints
 * "libsn: sn_fiber_spawn called off a reactor core" and aborts.
 */
SN_API SN_MUST_USE struct sn_future *sn_fiber_spawn(sn_fiber_fn fn, void *arg,
                                                    const struct sn_fiber_opts *opts);

/*
 * Waits for `f` and takes it: returns its error (0 or a negative errno) and stores its value
 * in *value (0 on failure; `value` may be NULL). When f has already settled it returns at
 * once without switching; otherwise only the calling fiber is suspended until f settles, and
 * it resumes from the run queue. NULL (SN_SUCCESS) counts as a future that succeeded with 0.
 *
 * Inside a fiber only. On a core outside a fiber (a callback, a continuation, the app's
 * main function), waiting would block the loop: it takes f (as sn_ignore does), returns
 * -EDEADLK at once, and never blocks or spins, whether f has settled or not. Off a reactor
 * core it prints "libsn: sn_await called off a reactor core" and aborts (f belongs to a
 * core and cannot be touched there).
 */
SN_API int sn_await(struct sn_future *f, uint64_t *value);

/*
 * Suspends the calling fiber for `ns` nanoseconds (sn_sleep's timer; the core goes on).
 * 0; -ECANCELED when the reactor stops first or has stopped; -EDEADLK outside a fiber
 * (returns at once). Inside a fiber only.
 */
SN_API int sn_fiber_sleep_ns(uint64_t ns);

/*
 * Lets the other tasks of the core run: the fiber goes to the back of the run queue and
 * comes back after them. 0; -ECANCELED (after yielding all the same) once the reactor is
 * stopping, so a loop that yields until an error ends at shutdown; -EDEADLK outside a fiber
 * (returns at once). Inside a fiber only. A fiber that yields in a loop keeps its core busy
 * (never asleep): to wait for something, await its future instead.
 */
SN_API int sn_fiber_yield(void);

/* True when the caller runs inside a fiber (on a fiber's stack). Any thread. */
SN_API bool sn_in_fiber(void);

/*
 * The calling fiber's name (valid while it runs), or NULL outside a fiber. Any thread.
 */
SN_API const char *sn_fiber_name(void);

/*
 * The most stack the calling fiber has used so far, in bytes, when its stack is measured
 * (SN_FIBER_MEASURE_STACK or SN_FIBER_STACK_CHECK=1); 0 outside a fiber or when it is not.
 * Costs a scan of the unused part of the stack. Inside a fiber only.
 */
SN_API size_t sn_fiber_stack_used(void);

SN_END_DECLS

#endif
