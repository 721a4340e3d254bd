/*
 * Synchronisation on one core, for callback code and fiber code alike: a semaphore with
 * units, a gate (the shape of every server's shutdown), an event (a condition without
 * memory) and a bounded queue of 64-bit items. Every wait returns a future: a callback
 * chain attaches a continuation, a fiber awaits it (include/sn/fiber.h). Nothing here blocks
 * a thread or spins; only the waiting fiber or chain waits, and its core goes on:
 *
 *     static int consumer(void *arg, uint64_t *value)     // a fiber
 *     {
 *         struct sn_queue *q = arg;
 *         uint64_t item;
 *         int err;
 *         while ((err = sn_await(sn_queue_pop(q), &item)) == 0)
 *             handle(item);
 *         return err == -EPIPE ? 0 : err;   // closed and drained, or cancelled by the stop
 *     }
 *
 * Threads: every object belongs to the core that created it (its owner) and every function
 * here is owner core only. Called on another core a function fails with -EXDEV: those that
 * return int return -EXDEV, those that return a future return a failed future. A function
 * that returns a future, called on a thread that is not a reactor core at all, prints
 * `libsn: <function> called off a reactor core` and aborts (it cannot make a future there);
 * sn_*_destroy on the wrong thread prints a message and aborts too (it cannot report an
 * error). To use an object from another core, run the call on its owner and get the answer
 * back as a future:
 *
 *     static struct sn_future *push_there(void *arg)   // runs on the owner core
 *     {
 *         struct job *j = arg;
 *         return sn_queue_push(j->queue, j->item);
 *     }
 *     ...
 *     sn_done(sn_submit_to(owner, push_there, j), pushed, j);   // on any core
 *
 * Waiting: waiters are served first come, first served. A future from a wait settles from
 * a later call on the object (signal, notify, push, pop, leave, close, break), from its
 * timeout, or from the shutdown; its continuation runs on the owner core. The `_for` forms
 * take a timeout in nanoseconds: a wait that times out fails with -ETIMEDOUT and has taken
 * nothing; a timeout of 0 fails at once unless the wait can be served at once.
 *
 * Shutdown: when the reactor stops, every pending wait (semaphore, event, queue push and
 * pop) fails with -ECANCELED, so fibers blocked in them unwind, and from then on a wait that
 * would have to block fails at once with -ECANCELED (one that can be served at once still
 * succeeds: a consumer can drain a queue). Closing a gate or a queue is not a wait: its
 * future settles when the gate empties or the queue drains, never because of the shutdown.
 *
 * Lifecycle: sn_*_create returns 0 or -ENOMEM (-EPERM off a core, -EINVAL for bad
 * arguments) and stores the object in *out. sn_*_destroy frees it at once: every pending
 * wait on it fails with -ECANCELED (after the object is gone, so those continuations must
 * not touch it), a pending close future fails with -ECANCELED, and queued items are
 * dropped. Destroy accepts NULL.
 */
#ifndef SN_SYNC_H
#define SN_SYNC_H

#include <sn/common.h>

SN_BEGIN_DECLS

struct sn_future;
struct sn_semaphore;
struct sn_gate;
struct sn_event;
struct sn_queue;

/* ---- semaphore ---- */

/*
 * Creates a semaphore holding `units` (at most INT64_MAX) on the calling core.
 * 0, -EINVAL, -EPERM off a core, -ENOMEM. Owner core only (the calling core becomes it).
 */
SN_API int sn_semaphore_create(uint64_t units, struct sn_semaphore **out);

/* Destroys `sem` (NULL is fine): pending waits fail with -ECANCELED. Owner core only. */
SN_API void sn_semaphore_destroy(struct sn_semaphore *sem);

/*
 * Takes `n` units: the future succeeds (value 0) once they were taken. Fair and in order:
 * while anyone waits, a new wait queues behind them even when `n` units are available, and
 * a large wait at the head holds back smaller ones behind it until enough units came back
 * (as Seastar's semaphore does), so a large request is never starved. Fails with the
 * semaphore's error once it is broken, -EINVAL for n > INT64_MAX, -ECANCELED when the
 * reactor stops, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_semaphore_wait(struct sn_semaphore *sem, uint64_t n);

/* sn_semaphore_wait that fails with -ETIMEDOUT after `timeout_ns`, taking nothing. */
SN_API SN_MUST_USE struct sn_future *sn_semaphore_wait_for(struct sn_semaphore *sem, uint64_t n,
                                                           uint64_t timeout_ns);

/*
 * Takes `n` units now if that needs no waiting: 0; -EAGAIN when fewer are available or
 * others wait; the error it was broken with; -EINVAL; -EXDEV on another core. Owner core
 * only.
 */
SN_API int sn_semaphore_try_wait(struct sn_semaphore *sem, uint64_t n);

/*
 * Returns `n` units and serves the waiters they satisfy, in order. Works on a broken
 * semaphore too (the units are counted; nobody waits). 0; -EOVERFLOW when the count would
 * pass INT64_MAX (nothing changes); -EXDEV on another core. Owner core only.
 */
SN_API int sn_semaphore_signal(struct sn_semaphore *sem, uint64_t n);

/*
 * Breaks `sem`: every pending wait and every later wait or try_wait fails with `err` (a
 * negative errno; 0 means -EPIPE). Final: a second break changes nothing. 0, or -EXDEV on
 * another core. Owner core only.
 */
SN_API int sn_semaphore_break(struct sn_semaphore *sem, int err);

/* Units available now (waiters not counted), or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_semaphore_available(const struct sn_semaphore *sem);

/* Number of pending waits, or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_semaphore_waiters(const struct sn_semaphore *sem);

/* ---- gate ---- */

/*
 * A gate counts the work in progress on an object so that its owner can close it and learn
 * when the last piece of work has left: each request enters before it starts and leaves
 * when done; shutdown closes the gate, which refuses new entries, and waits for the close
 * future. Creates an open, empty gate on the calling core: 0, -EPERM off a core, -ENOMEM.
 * Owner core only.
 */
SN_API int sn_gate_create(struct sn_gate **out);

/*
 * Destroys `g` (NULL is fine); a pending close future fails with -ECANCELED. Members still
 * inside must not call sn_gate_leave afterwards. Owner core only.
 */
SN_API void sn_gate_destroy(struct sn_gate *g);

/* Enters `g`: 0; -ESHUTDOWN once it is closed; -EXDEV on another core. Owner core only. */
SN_API int sn_gate_enter(struct sn_gate *g);

/*
 * Leaves `g` (one leave for each successful enter); the last leave after a close settles
 * the close future (its continuation may run before this returns). 0; -EINVAL when nobody
 * is inside; -EXDEV on another core. Owner core only.
 */
SN_API int sn_gate_leave(struct sn_gate *g);

/*
 * Closes `g`: later enters fail with -ESHUTDOWN, and the future succeeds (value 0) once
 * every member has left, at once when none is inside. Not cancelled by the shutdown: it
 * settles only when the gate empties (or fails with -ECANCELED when `g` is destroyed).
 * Fails with -EALREADY when `g` was already closed, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_gate_close(struct sn_gate *g);

/* Members inside now, or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_gate_count(const struct sn_gate *g);

/* ---- event ---- */

/* Creates an event on the calling core: 0, -EPERM off a core, -ENOMEM. Owner core only. */
SN_API int sn_event_create(struct sn_event **out);

/* Destroys `ev` (NULL is fine): pending waits fail with -ECANCELED. Owner core only. */
SN_API void sn_event_destroy(struct sn_event *ev);

/*
 * Waits for the next notification: the future succeeds (value 0) when a later
 * sn_event_notify_one picks this wait or a later sn_event_notify_all runs. An event has no
 * memory: a notify wakes only the waits pending at that moment, a notify with nobody
 * waiting is lost, and a wait made after a notify (even from the continuation of a wait it
 * woke) waits for the next one. So check the condition, then wait, in one go on the owner
 * core (nothing can run in between): `while (!ready) sn_await(sn_event_wait(ev), NULL);`.
 * Fails with -ECANCELED when the reactor stops, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_event_wait(struct sn_event *ev);

/* sn_event_wait that fails with -ETIMEDOUT after `timeout_ns` (0: at once). */
SN_API SN_MUST_USE struct sn_future *sn_event_wait_for(struct sn_event *ev, uint64_t timeout_ns);

/*
 * Wakes the oldest pending wait. Returns how many were woken (0 or 1), or -EXDEV on another
 * core. Owner core only.
 */
SN_API int sn_event_notify_one(struct sn_event *ev);

/*
 * Wakes every wait pending now (not the ones their continuations make). Returns how many
 * were woken (saturated at INT_MAX), or -EXDEV on another core. Owner core only.
 */
SN_API int sn_event_notify_all(struct sn_event *ev);

/* Number of pending waits, or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_event_waiters(const struct sn_event *ev);

/* ---- queue ---- */

/*
 * A bounded FIFO of 64-bit items (numbers or pointers) between producers and consumers on
 * one core: the backpressure tool. A push waits while the queue is full, a pop waits while
 * it is empty, both first come, first served. An item (and, for a pointer, what it points
 * to) belongs to the queue from a successful push until a pop hands it to its caller; a
 * push that fails leaves it with the pusher.
 *
 * Creates an empty queue of `capacity` items (1 to 2^31) on the calling core: 0, -EINVAL,
 * -EPERM off a core, -ENOMEM. Owner core only.
 */
SN_API int sn_queue_create(uint32_t capacity, struct sn_queue **out);

/*
 * Destroys `q` (NULL is fine): pending pushes and pops and a pending close fail with
 * -ECANCELED; items still queued are dropped (drain them first when they own memory).
 * Owner core only.
 */
SN_API void sn_queue_destroy(struct sn_queue *q);

/*
 * Pushes `item`: the future succeeds (value 0) once it is in the queue or in the hands of a
 * waiting pop. Fails with the close error once `q` is closed (a push waiting at the close
 * fails too), -ECANCELED when the reactor stops, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_queue_push(struct sn_queue *q, uint64_t item);

/* sn_queue_push that fails with -ETIMEDOUT after `timeout_ns`, the item not queued. */
SN_API SN_MUST_USE struct sn_future *sn_queue_push_for(struct sn_queue *q, uint64_t item,
                                                       uint64_t timeout_ns);

/*
 * Pops the oldest item: the future succeeds with it as its value. After a close, pops still
 * drain the items queued before it, then fail with the close error. Fails with -ECANCELED
 * when the reactor stops, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_queue_pop(struct sn_queue *q);

/* sn_queue_pop that fails with -ETIMEDOUT after `timeout_ns`, taking nothing. */
SN_API SN_MUST_USE struct sn_future *sn_queue_pop_for(struct sn_queue *q, uint64_t timeout_ns);

/*
 * Pushes `item` now if that needs no waiting: 0; -EAGAIN when full (or pushes wait); the
 * close error once closed; -EXDEV on another core. Owner core only.
 */
SN_API int sn_queue_try_push(struct sn_queue *q, uint64_t item);

/*
 * Pops the oldest item into *item now if there is one: 0; -EAGAIN when empty; the close
 * error once closed and drained; -EXDEV on another core. Owner core only.
 */
SN_API int sn_queue_try_pop(struct sn_queue *q, uint64_t *item);

/*
 * Closes `q` with `err` (a negative errno; 0 means -EPIPE), the end of the stream: pending
 * and later pushes fail with err, pops drain the items already queued and then fail with
 * err (pending pops fail at once when it is empty). The future succeeds (value 0) once the
 * queue is empty, at once when it already is; it is not cancelled by the shutdown. Fails
 * with -EALREADY when `q` was already closed, -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_queue_close(struct sn_queue *q, int err);

/* Items queued now, or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_queue_length(const struct sn_queue *q);

/* The capacity given at creation, or -EXDEV on another core. Owner core only. */
SN_API int64_t sn_queue_capacity(const struct sn_queue *q);

SN_END_DECLS

#endif
