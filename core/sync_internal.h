/*
 * Internal: the wait lists behind the synchronisation primitives (include/sn/sync.h).
 *
 * A wait is a pooled record holding a promise, queued on one wait list of its object. It
 * leaves the list in one of three ways: the object serves it, its timeout fires, or the
 * object (destroy, break, close) or the core (shutdown) fails it. Whatever takes waiters
 * off a list first moves them to a wake batch, and settles the batch only once it has
 * stopped touching the object: settling runs continuations inline, and a continuation may
 * wait on the object again, signal it, or destroy it. Wakes settle in the order they were
 * taken, across objects: a batch made by a continuation while an earlier batch is being
 * settled joins the end of it instead of settling at once, so the continuations of waits
 * served in FIFO order also run in that order (and re-entry never nests deeper).
 *
 * Every list that has waiters is on its core's registry (sched->sync_waiting), which the
 * reactor empties with sn__sync_cancel_all when the core enters stopping mode.
 * Everything here is owner core only.
 */
#ifndef SN_CORE_SYNC_INTERNAL_H
#define SN_CORE_SYNC_INTERNAL_H

#include <sn/future.h>
#include <sn/list.h>
#include <sn/timer.h>

#include "core/sched.h"

#include <errno.h>
#include <stdint.h>

/* sn__wait_add's timeout when the wait has none. */
#define SN__NO_TIMEOUT UINT64_MAX

/* Largest unit count or pending-wait count the public functions report. */
#define SN__SYNC_MAX ((uint64_t)INT64_MAX)

struct sn__wait_list;
struct sn__wait_timeout;

/*
 * One pending wait (core pool). `link` is on its list's `waits` while pending, then on a
 * wake batch until it settles.
 */
struct sn__sync_wait {
    struct sn_list_node link;
    struct sn__wait_list *list; /* NULL once taken off it */
    struct sn_promise *promise;
    struct sn__wait_timeout *timeout; /* NULL: no deadline */
    uint64_t data;                    /* what it waits for: units, the item of a push */
    uint64_t value;                   /* the result once taken: the item of a pop */
    int err;                          /* the result once taken */
};
_Static_assert(sizeof(struct sn__sync_wait) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

/* A wait's deadline (core pool), only for the _for forms. */
struct sn__wait_timeout {
    struct sn_timer timer;
    struct sn__sync_wait *wait;
};
_Static_assert(sizeof(struct sn__wait_timeout) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

/* Waits taken off their lists, to be settled together (sn__wake_settle). */
struct sn__wake {
    struct sn_list waits;
};

/*
 * Called after a wait on `l` timed out (it is already in `b`), for objects where leaving
 * the head of the line may let the next waits through (the semaphore).
 */
typedef void (*sn__after_timeout_fn)(struct sn__wait_list *l, struct sn__wake *b);

/* A FIFO of waits, embedded in its object. */
struct sn__wait_list {
    struct sn_list waits; /* struct sn__sync_wait, oldest first */
    uint64_t len;
    struct sn_list_node reg;            /* on the core's sync_waiting while len > 0 */
    sn__after_timeout_fn after_timeout; /* NULL: nothing to do */
};

/* The oldest wait of `l`, or NULL. */
static inline struct sn__sync_wait *sn__wait_first(const struct sn__wait_list *l)
{
    struct sn_list_node *n = sn_list_first(&l->waits);
    return n ? SN_CONTAINER_OF(n, struct sn__sync_wait, link) : NULL;
}

/* ---- the wait machinery (core/sync_wait.c) ---- */

void sn__wait_list_init(struct sn__wait_list *l, sn__after_timeout_fn after_timeout);

/*
 * Queues a wait for `data` on `l` and returns its future. Fails at once (a failed future)
 * with -ECANCELED when the core is stopping, -ETIMEDOUT when `timeout_ns` is 0, or the
 * timer's error. `timeout_ns` SN__NO_TIMEOUT: no deadline.
 */
struct sn_future *sn__wait_add(struct sn__sched *s, struct sn__wait_list *l, uint64_t data,
                               uint64_t timeout_ns);

static inline void sn__wake_init(struct sn__wake *b)
{
    sn_list_init(&b->waits);
}

/* Takes `w` off its list (disarming its timeout) into `b`, to settle with err or value. */
void sn__wait_take(struct sn__sched *s, struct sn__sync_wait *w, int err, uint64_t value,
                   struct sn__wake *b);

/* Takes every waiter of `l` into `b`, to fail with `err`. */
void sn__wait_take_all(struct sn__sched *s, struct sn__wait_list *l, int err, struct sn__wake *b);

/*
 * Settles the futures of `b` in order and frees their records (`b` is left empty): at once,
 * or, when called from a continuation that such a settle runs, after the wakes before them.
 */
void sn__wake_settle(struct sn__sched *s, struct sn__wake *b);

/* ---- owner checks ---- */

/* 0 when the calling thread is core `owner`, else -EXDEV. */
int sn__sync_check(unsigned owner);

/* For destroy (which cannot return an error): aborts with a message unless on `owner`. */
void sn__sync_check_destroy(unsigned owner, const char *fn);

/* A negative errno from a caller's `err`: positive ones negated, 0 becomes -EPIPE. */
static inline int sn__sync_err(int err)
{
    return err < 0 ? err : err > 0 ? -err : -EPIPE;
}

#endif
