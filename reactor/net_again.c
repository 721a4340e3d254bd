/*
 * What a connection does after the kernel ended a send or a receive with -EAGAIN (net_send.c,
 * net_recv.c tell why that happens): the operation is made again, never in a spin.
 *
 * - The retry polls first (IORING_RECVSEND_POLL_FIRST): the kernel waits for the socket to be
 *   writable (readable) before it tries, instead of trying at once and failing again.
 * - After SN__NET_AGAIN_FREE consecutive -EAGAINs of one direction (no byte moved between
 *   them) the retry waits for a back-off first: 1 ms, doubling up to SN__NET_AGAIN_MAX_MS.
 *   That is the case of a socket whose poll says ready while the operation keeps failing (TCP
 *   memory pressure: writable by poll, no memory for the send), where each -EAGAIN has
 *   already cost the kernel 128 wake-ups; without it the send would be made every loop turn.
 *
 * The back-off is an io_uring timeout (aop), not a core timer: the reactor's stop disarms
 * every timer but cancels io, so a wait under way at the stop ends (-ECANCELED) and the
 * output gets its stop deadline as any other (the wait is also cut to that deadline). One
 * wait serves both directions: a second one joins the wait under way. A connection that
 * aborts cancels it (sn__conn_progress); the idle timeout ends a connection that waits, since
 * an -EAGAIN is no activity.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>

#include "reactor/core.h"

#define SN__NET_AGAIN_FREE   2u  /* consecutive -EAGAINs retried without a back-off */
#define SN__NET_AGAIN_MAX_MS 32u /* the longest back-off */

bool sn__net_poll_first_ok(void)
{
    struct sn__core *core = sn__core_self();
    /* Provided buffer rings came in the same kernel release (5.19) as the flag. */
    return core && (core->uring.features & SN__URING_BUF_RING);
}

/* The back-off after the n-th consecutive -EAGAIN (n > SN__NET_AGAIN_FREE), cut to the stop
 * deadline; 0 when that has passed. */
static uint64_t backoff_ns(const struct sn_conn *c, unsigned n)
{
    unsigned shift = n - SN__NET_AGAIN_FREE - 1;
    uint64_t ms = 1u << (shift < 5 ? shift : 5);
    uint64_t ns = (ms < SN__NET_AGAIN_MAX_MS ? ms : SN__NET_AGAIN_MAX_MS) * 1000000u;
    if (c->stop_deadline) {
        uint64_t now = sn_now_ns();
        if (now >= c->stop_deadline)
            return 0;
        if (c->stop_deadline - now < ns)
            ns = c->stop_deadline - now;
    }
    return ns;
}

static void again_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)res, (void)flags; /* -ETIME, or -ECANCELED (abort, reactor stop): the wait is over */
    struct sn_conn *c = SN_CONTAINER_OF(op, struct sn_conn, aop);
    c->acancel = false;
    c->swait = c->rwait = false;
    sn__conn_progress(c);
}

/* Starts the back-off wait; false when there is none (deadline passed, no SQE). */
static bool backoff_start(struct sn_conn *c, unsigned n)
{
    uint64_t ns = backoff_ns(c, n);
    struct io_uring_sqe *sqe = ns ? sn__io_sqe() : NULL;
    if (!sqe)
        return false; /* retried at once (polling first): a lack of SQEs does not last */
    c->again_ts.tv_sec = (long long)(ns / 1000000000u);
    c->again_ts.tv_nsec = (long long)(ns % 1000000000u);
    io_uring_prep_timeout(sqe, &c->again_ts, 0, 0);
    c->aop.cb = again_cb;
    sn__sqe_bind_as(sqe, &c->aop, c->tag);
    c->nc->counts.again_waits++;
    return true;
}

void sn__conn_again(struct sn_conn *c, bool send)
{
    if (send)
        c->nc->counts.send_again++;
    else
        c->nc->counts.recv_again++;
    uint8_t *n = send ? &c->sagain : &c->ragain;
    if (*n < UINT8_MAX)
        (*n)++;
    if (*n <= SN__NET_AGAIN_FREE)
        return;
    bool *wait = send ? &c->swait : &c->rwait;
    if (c->aop.inflight)
        *wait = true; /* joins the wait under way */
    else
        *wait = backoff_start(c, *n);
}
