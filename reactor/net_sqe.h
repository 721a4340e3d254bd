/*
 * Internal: how the network and file layers get SQEs, and what they do when there is none.
 *
 * sn__sqe_get (reactor/io.h) returns NULL when the submission queue is still full after
 * submitting what it holds: the kernel would not take more (io_uring_enter failing with
 * -EBUSY or -EAGAIN, for instance while completions overflow). No request may be lost then,
 * so every call site does one of two things:
 *   - a call the app makes and that can report an error (sn_connect, sn_udp_send, sn_listen,
 *     sn_udp_open) fails with -EBUSY, and the app may try again;
 *   - work the app cannot see fail (re-arming a receive or an accept, a flush, a cancel, the
 *     next piece of a file read or write, a file operation just started) waits with
 *     sn__sqe_wait for the loop's next submit and tries again then.
 *
 * Tests force the NULL case with sn__sqe_fail_next (see sn__io_sqe).
 */
#ifndef SN_REACTOR_NET_SQE_H
#define SN_REACTOR_NET_SQE_H

#include <sn/common.h>

#include <stdbool.h>
#include <stdint.h>

#include "reactor/io.h"

/*
 * Test hook, per core thread: while non-zero, each sn__io_sqe call fails (returns NULL) and
 * decrements it, and sn__sqe_failed counts the failures. Zero in normal operation.
 */
extern __thread unsigned sn__sqe_fail_next;
extern __thread uint64_t sn__sqe_failed;

/* sn__sqe_get for the network and file layers (with the test hook). Owner core only. */
static inline struct io_uring_sqe *sn__io_sqe(void)
{
    if (sn_unlikely(sn__sqe_fail_next)) {
        sn__sqe_fail_next--;
        sn__sqe_failed++;
        return NULL;
    }
    return sn__sqe_get();
}

/*
 * Calls fn(arg, 0, 0) once the loop has submitted again (from the timer phase of this turn,
 * after the io phase submitted and reaped), or fn(arg, -ECANCELED, 0) if the reactor starts
 * stopping first. Never calls fn from inside this call: returns false instead (the reactor
 * is already stopping, or no memory), and then fn is never called. Owner core only.
 */
bool sn__sqe_wait(void (*fn)(void *arg, int err, uint64_t value), void *arg);

#endif
