/*
 * Internal: waking a reactor core that sleeps in io_uring_wait_cqe*.
 *
 * Every core has a struct sn__waker. Two ways to make the sleeper's wait return:
 *   - MSG_RING (preferred, reactor to reactor): the sender queues IORING_OP_MSG_RING on ITS
 *     OWN ring aimed at the target ring's fd; the target gets a CQE with user_data
 *     SN__UD_WAKE_MSG. The sender's own completion is suppressed with IOSQE_CQE_SKIP_SUCCESS
 *     when the kernel has it; a sender-side CQE (tagged SN__UD_WAKE_SENT_TAG | target) comes
 *     back only on failure, and then the wake is redone through the eventfd, so none is lost.
 *   - eventfd (fallback, and always for threads that are not reactors): each core keeps an
 *     IORING_OP_READ of its eventfd armed on its ring (user_data SN__UD_WAKE_EVENTFD); a
 *     write to the eventfd completes it, and the owner re-arms it when handling the CQE.
 *
 * The "is it asleep" protocol, which keeps the send path free when the target is awake
 * (a Dekker pair of seq_cst fences; no lost wake-up):
 *     target (owner):  sn__waker_sleep_begin(w); re-check every input (mesh, inbox, tasks);
 *                      if anything came: sn__waker_sleep_end(w) and run it;
 *                      else block in io_uring; on return sn__waker_sleep_end(w).
 *     sender:          publish the work (release store); then
 *                      if (sn__waker_need_wake(w)) sn__wake_from_reactor(...) / _from_thread.
 * need_wake clears the flag, so of many concurrent senders only one sends the wake. A wake
 * that arrives after the target woke for another reason is harmless: one spurious turn.
 *
 * Shutdown: stop all senders before closing any target ring (a MSG_RING aimed at a closed fd
 * number that was reused would go astray), then exit the rings, then sn__waker_destroy.
 */
#ifndef SN_REACTOR_WAKE_H
#define SN_REACTOR_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <sn/common.h>
#include "reactor/uring.h"

struct sn__waker {
    /* Written by senders and the owner. */
    _Atomic int sleeping SN_CACHE_ALIGNED;
    /* Read-only after sn__waker_init. */
    int ring_fd;   /* the owner's ring fd, target of MSG_RING */
    int efd;       /* eventfd, non-blocking */
    bool msg_ring; /* senders may use MSG_RING towards this core */
    /* Owner only. */
    uint64_t efd_buf SN_CACHE_ALIGNED; /* the armed read's buffer: must outlive the ring */
    bool efd_armed;
};

/*
 * Prepares `w` for the core that owns ring `u` (any thread, before the waker is published
 * to senders): creates the eventfd, records u's fd, and enables MSG_RING wake-ups when u
 * supports MSG_RING and `force_eventfd` is false (env SN_WAKE_EVENTFD=1 forces it too).
 * Returns 0, or a negative errno from eventfd().
 */
int sn__waker_init(struct sn__waker *w, const struct sn__uring *u, bool force_eventfd);

/* Closes the eventfd. Call after the owner's ring has been exited (its read uses efd_buf). */
void sn__waker_destroy(struct sn__waker *w);

/*
 * Owner only: queues the eventfd read on the owner's ring if it is not armed yet (the caller
 * submits). sn__waker_handle_cqe re-arms it after each completion; calling this before every
 * sleep as well is cheap (a flag test) and covers a re-arm that found the SQ full. Returns
 * 0, or -EBUSY when the SQ is full even after a submit.
 */
int sn__waker_arm(struct sn__waker *w, struct sn__uring *u);

/*
 * Reactor thread that owns `src` only: makes `target` wake up. With MSG_RING (both sides
 * support it) it queues one SQE on src and does not submit: the caller's next
 * io_uring_submit* sends it (submit before blocking!). Otherwise, or when src's SQ stays
 * full, it writes the target's eventfd. `target` may be the caller's own waker. Returns 0 or
 * a negative errno from write().
 */
int sn__wake_from_reactor(struct sn__uring *src, struct sn__waker *target);

/* Any thread: writes the target's eventfd. Returns 0 or a negative errno from write(). */
int sn__wake_from_thread(struct sn__waker *target);

/*
 * Owner of `u` (whose waker is `self`) only: handles a CQE if it is a wake-up CQE and returns
 * true, else returns false and leaves it to the caller. Does not advance the CQ: the caller
 * marks every CQE seen as usual. Handles: SN__UD_WAKE_MSG (nothing to do),
 * SN__UD_WAKE_EVENTFD (re-arms the read), and the sender-side SN__UD_WAKE_SENT_TAG
 * completions of sn__wake_from_reactor (on failure, redoes the wake through the eventfd).
 */
bool sn__waker_handle_cqe(struct sn__waker *self, struct sn__uring *u,
                          const struct io_uring_cqe *cqe);

/* Owner: announces the intent to sleep (then re-check inputs before blocking). */
static inline void sn__waker_sleep_begin(struct sn__waker *w)
{
    atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

/* Owner: back awake (after the blocking wait, or when the re-check found work). */
static inline void sn__waker_sleep_end(struct sn__waker *w)
{
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

/*
 * Sender, after publishing work for the owner of `w`: true when the target announced sleep
 * and this caller must send the wake (the flag is cleared, so only one sender does).
 * Costs one fence and one load of a line that stays shared while the target is awake.
 */
static inline bool sn__waker_need_wake(struct sn__waker *w)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&w->sleeping, memory_order_relaxed))
        return false;
    return atomic_exchange_explicit(&w->sleeping, 0, memory_order_acq_rel) != 0;
}

#endif
