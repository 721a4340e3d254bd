/*
 * A connection's life: creation, the decision of what it does next (sn__conn_progress), the
 * idle timer, close / shutdown / abort, and the final step that closes the socket and calls
 * on_close from the run queue.
 *
 * Every event (a completion, a write, a close request, the idle timer) ends in
 * sn__conn_progress, which looks at the state and starts or cancels operations: reading
 * when the app wants it and the output backlog allows it, SHUT_WR or close once the output
 * has drained, and the final step once nothing is in flight. Events that happen while an
 * app callback runs (refs > 0) are settled when the callback returns; a queued presentation
 * of held input (net_recv.c) and a wait for an SQE hold a ref the same way.
 *
 * Reactor stop (sn__conn_stop): reading stops, writes are still taken, and the output gets
 * until stop_deadline to leave (net_send.c re-sends what the reactor's stop-time cancel cut
 * short); then the connection closes, or is reset with the rest unsent.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void conn_finish(struct sn_task *t);
static void idle_fire(void *arg);

struct sn_conn *sn__conn_new(struct sn__netc *nc, int fd, const struct sn_conn_limits *lim,
                             const struct sn_conn_ops *ops, void *arg, struct sn_listener *l)
{
    struct sn_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->core = nc->core;
    /* The group of the accept callback (the listener's) or of connect's caller. Not the
     * serving bit: a connection outlives the request whose code may have opened it, and
     * its calls are held to the caps like any other (reactor/smp_service.c). */
    c->tag = sn__tls_sched->tag & SN__TAG_GROUP;
    c->nc = nc;
    c->ops = ops;
    c->arg = arg;
    c->lim = *lim;
    if (!c->lim.input_max)
        c->lim.input_max = SN_CONN_DEFAULT_INPUT_MAX;
    if (!c->lim.output_high)
        c->lim.output_high = SN_CONN_DEFAULT_OUTPUT_HIGH;
    if (!c->lim.output_low || c->lim.output_low >= c->lim.output_high)
        c->lim.output_low = c->lim.output_high / 2;
    if (!c->lim.max_open_replies)
        c->lim.max_open_replies = SN_CONN_DEFAULT_MAX_OPEN_REPLIES;
    if (!c->lim.line_max)
        c->lim.line_max = SN_CONN_DEFAULT_LINE_MAX;
    if (c->lim.line_max > c->lim.input_max)
        c->lim.line_max = c->lim.input_max; /* a line is input kept until it is whole */
    c->l = l;
    c->reading = true;
    c->bufring = !lim->plain_recv && sn__netc_bufring(nc);
    sn__io_op_init(&c->rop, NULL);
    sn__io_op_init(&c->sop, NULL);
    sn__io_op_init(&c->aop, NULL);
    sn_task_init(&c->fin_task, conn_finish);
    sn_timer_init(&c->idle, idle_fire, c);
    c->last_active = sn_now_ns();
    sn_list_push_back(&nc->conns, &c->link);
    sn__netc_ref(nc);
    sn__conn_fix_file(c);
    return c;
}

void sn__conn_start(struct sn_conn *c)
{
    if (c->lim.idle_ms && !c->fin_queued)
        sn_timer_arm(&c->idle, (uint64_t)c->lim.idle_ms * 1000000u);
    sn__conn_progress(c);
}

/* ---- the final step ------------------------------------------------------------------------ */

void sn__conn_free(struct sn_conn *c)
{
    struct sn__netc *nc = c->nc;
    sn__stream_free(c);
    free(c);
    sn__netc_unref(nc); /* after the slots: their buffers come from its pool */
}

static void conn_finish(struct sn_task *t)
{
    struct sn_conn *c = SN_CONTAINER_OF(t, struct sn_conn, fin_task);

    c->holds++; /* the final step's own: whatever the callbacks do, c stays until its end */
    if (c->backlog)
        c->linger0 = true; /* output is dropped (idle timeout, error): reset, so the peer
                            * cannot take a cut reply for a whole one */
    sn__conn_out_drop(c);
    sn__conn_unfix_file(c); /* before the fd number can be handed out again */
    sn__net_close_fd(c->fd, c->linger0);
    c->fd = -1;
    sn_list_remove(&c->link);
    if (c->l)
        sn__listener_conn_gone(c->l, c->core);
    if (c->err && c->err != -ECONNABORTED && c->ops && c->ops->on_error)
        c->ops->on_error(c, c->arg, c->err);
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c, c->arg, c->err);
    free(c->ibuf);
    free(c->rbuf);
    c->ibuf = c->rbuf = NULL;
    c->ilen = c->icap = 0;
    sn__reply_conn_finished(c);
    c->finished = true;
    if (c->stream)
        sn__stream_stop(c, c->err ? c->err : -EPIPE);
    /* Read after on_close: a close called from inside it gets settled too. */
    sn__conn_flushed(c, sn__conn_write_err(c));
    sn__waiters_settle(&c->closed, c->err, 0);
    sn_conn_release(c); /* frees c unless held or a slot is open */
}

/* No operation in flight any more and nothing left to do: queue the final step. */
static void conn_queue_finish(struct sn_conn *c)
{
    if (c->fin_queued)
        return; /* (a nested progress got here first) */
    c->fin_queued = true;
    c->wr_closed = true;
    sn_timer_cancel(&c->idle);
    sn_schedule(&c->fin_task);
}

/* ---- deciding what comes next ------------------------------------------------------------- */

static bool want_read(struct sn_conn *c)
{
    if (c->aborting || c->want_close)
        return false;
    /* Backpressure, with hysteresis: pause above the limit, resume at half of it. Input held
     * meanwhile (and a held EOF) is presented once it resumes. */
    if (c->paused && sn__conn_under_half(c)) {
        c->paused = false;
        sn__conn_repost(c);
    } else if (!c->paused && sn__conn_over(c)) {
        c->paused = true;
    }
    /* No new receive while held input waits to be presented: what is held stays bounded. */
    return !c->eof && c->reading && !c->paused && !c->repost;
}

/* Queues a cancel of `op` unless one is queued; without an SQE, waits and tries again. */
static void cancel_op(struct sn_conn *c, struct sn__io_op *op, bool *queued)
{
    if (!op->inflight || *queued)
        return;
    *queued = sn__net_cancel(op);
    if (!*queued && !sn_stopping())
        sn__conn_wait_sqe(c); /* (while stopping the reactor cancels it itself) */
}

/* Cancels the receive; with sends_too also the send and the back-off after -EAGAIN. */
static void stop_ops(struct sn_conn *c, bool sends_too)
{
    cancel_op(c, &c->rop, &c->rcancel);
    if (sends_too) {
        cancel_op(c, &c->sop, &c->scancel);
        cancel_op(c, &c->aop, &c->acancel);
    }
}

/* Nothing of `c` is in flight in the kernel any more. */
static bool ops_idle(const struct sn_conn *c)
{
    return !c->rop.inflight && !c->sop.inflight && !c->aop.inflight;
}

void sn__conn_progress(struct sn_conn *c)
{
    if (c->fin_queued || c->refs)
        return;
    if (c->aborting) {
        /* The output is dropped in the final step: an in-flight send may still read it. */
        stop_ops(c, true);
        if (ops_idle(c) && !c->refs)
            conn_queue_finish(c);
        return;
    }
    /* Output that no send or flush will take (a send that had no SQE, or one the reactor
     * cancelled at stop) goes with the next flush; after an -EAGAIN back-off when one runs. */
    if (c->backlog && !c->sop.inflight && !c->dirty && !c->swait)
        sn__netc_mark_dirty(c->nc, c);
    bool drained = c->backlog == 0 && !c->sop.inflight && !sn__conn_slots_pending(c);
    if (drained && c->want_shut && !c->shut_done) {
        c->shut_done = true;
        if (shutdown(c->fd, SHUT_WR) < 0 && !c->want_close) {
            sn__conn_fail(c, -errno);
            return;
        }
    }
    if (c->want_close) {
        stop_ops(c, drained); /* the back-off's wait is no longer needed once drained */
        if (drained && !c->fiber_runs && ops_idle(c) && !c->refs)
            conn_queue_finish(c);
        return;
    }
    bool want = want_read(c);
    if (want && !c->rop.inflight && !c->rwait) {
        int rc = sn__conn_arm_recv(c);
        if (rc == -EBUSY)
            sn__conn_wait_sqe(c);
        else if (rc < 0)
            sn__conn_fail(c, rc);
    } else if (!want && c->rop.inflight && !c->rcancel) {
        cancel_op(c, &c->rop, &c->rcancel);
        /* A multishot recv goes on delivering until the cancel reaches the kernel, and the
         * loop's completion phase can last as long as a fast peer keeps sending: submit it
         * now, so what is held meanwhile stays within what the ring had posted. Not for a
         * stream, which stops at every read-ahead mark (64 connections of sn-echo made 8x
         * the callback echo's io_uring_enter calls so): its cancel goes with the io phase's
         * submit, which comes before the kernel posts anything new (the completion phase
         * never enters the kernel, loop.c), so the bound is the same. */
        if (c->rcancel && c->bufring && !c->stream)
            sn__net_submit_now();
    }
}

static void sqe_ready(void *arg, int err, uint64_t value)
{
    (void)value;
    struct sn_conn *c = arg;
    c->sqe_wait = false;
    c->refs--;
    if (err)
        sn__conn_stop(c); /* the reactor stops: it cancels what is in flight */
    else
        sn__conn_progress(c);
}

void sn__conn_wait_sqe(struct sn_conn *c)
{
    if (c->sqe_wait || c->fin_queued)
        return;
    if (sn__sqe_wait(sqe_ready, c)) {
        c->sqe_wait = true;
        c->refs++; /* dropped by sqe_ready */
        return;
    }
    /* Stopping (or no memory): no later turn to wait for. */
    if (c->backlog && !c->sop.inflight) {
        c->linger0 = true; /* the peer must not take a cut reply for a whole one */
        sn__conn_fail(c, -EBUSY);
    } else {
        sn__conn_stop(c);
    }
}

void sn__conn_fail(struct sn_conn *c, int err)
{
    if (!c->err)
        c->err = err;
    c->aborting = true;
    c->wr_closed = true;
    sn__conn_progress(c);
}

void sn__conn_stop(struct sn_conn *c)
{
    if (c->fin_queued)
        return;
    if (!c->err)
        c->err = -ECANCELED;
    if (c->stream)
        sn__stream_stop(c, -ECANCELED);
    if (!c->stop_deadline) {
        unsigned ms = c->lim.stop_flush_ms ? c->lim.stop_flush_ms : SN_CONN_DEFAULT_STOP_FLUSH_MS;
        c->stop_deadline = sn_now_ns() + (uint64_t)ms * 1000000u;
    }
    /* Reading stops; writes are still taken until the close (replies to the last requests
     * may still be on their way from other cores), and the output gets until stop_deadline
     * to leave. */
    c->want_close = true;
    sn__conn_progress(c);
}

static void idle_fire(void *arg)
{
    struct sn_conn *c = arg;
    uint64_t idle = (uint64_t)c->lim.idle_ms * 1000000u;
    uint64_t quiet = sn_now_ns() - c->last_active;
    if (c->nslots) /* answers are being made: not idle */
        quiet = 0;
    if (quiet < idle) {
        sn_timer_arm(&c->idle, idle - quiet);
        return;
    }
    sn__conn_fail(c, -ETIMEDOUT);
}

/* ---- public ------------------------------------------------------------------------------- */

static bool foreign(const struct sn_conn *c)
{
    return sn_core_id() != c->core;
}

int sn_conn_shutdown(struct sn_conn *c)
{
    if (foreign(c))
        return -EXDEV;
    if (c->wr_closed)
        return 0;
    c->wr_closed = true;
    c->want_shut = true;
    sn__conn_progress(c);
    return 0;
}

/* sn_conn_close / sn_conn_abort on a connection whose on_close has run (it is held). */
static struct sn_future *closed_already(const struct sn_conn *c)
{
    return c->err ? sn_failed(c->err) : sn_ready(0);
}

struct sn_future *sn_conn_close(struct sn_conn *c)
{
    sn__sched_here(__func__);
    if (foreign(c))
        return sn_failed(-EXDEV);
    if (c->finished)
        return closed_already(c);
    struct sn_future *f = sn__waiters_add(&c->closed);
    if (!c->want_close && !c->aborting && !c->fin_queued) {
        c->want_close = true;
        c->wr_closed = true;
        sn__conn_progress(c);
    }
    return f;
}

struct sn_future *sn_conn_abort(struct sn_conn *c)
{
    sn__sched_here(__func__);
    if (foreign(c))
        return sn_failed(-EXDEV);
    if (c->finished)
        return closed_already(c);
    struct sn_future *f = sn__waiters_add(&c->closed);
    if (!c->fin_queued) {
        c->linger0 = true;
        sn__conn_fail(c, -ECONNABORTED);
    }
    return f;
}

int sn_conn_set_reading(struct sn_conn *c, bool on)
{
    if (foreign(c))
        return -EXDEV;
    if (c->reading == on)
        return 0;
    c->reading = on;
    if (on)
        sn__conn_repost(c); /* held input (and EOF) are presented from the run queue */
    sn__conn_progress(c);
    return 0;
}

int sn_conn_hold(struct sn_conn *c)
{
    if (foreign(c))
        return -EXDEV;
    c->holds++;
    return 0;
}

int sn_conn_release(struct sn_conn *c)
{
    if (foreign(c))
        return -EXDEV;
    if (!c->holds)
        return -EINVAL;
    if (--c->holds == 0 && c->finished && !c->nslots)
        sn__conn_free(c);
    return 0;
}

int sn_conn_set_arg(struct sn_conn *c, void *arg)
{
    if (foreign(c))
        return -EXDEV;
    c->arg = arg;
    return 0;
}

int sn_conn_fd(const struct sn_conn *c)
{
    if (foreign(c))
        return -EXDEV;
    return c->fd >= 0 ? c->fd : -EBADF;
}

unsigned sn_conn_core(const struct sn_conn *c)
{
    return c->core;
}

ssize_t sn_conn_backlog(const struct sn_conn *c)
{
    return foreign(c) ? -EXDEV : (ssize_t)c->backlog;
}

int sn_conn_peer(const struct sn_conn *c, struct sockaddr_storage *out, socklen_t *len)
{
    if (foreign(c))
        return -EXDEV;
    *len = sizeof *out;
    if (getpeername(c->fd, (struct sockaddr *)out, len) < 0)
        return -errno;
    return 0;
}

bool sn__conn_uses_bufring(const struct sn_conn *c)
{
    return c->bufring;
}

uint64_t sn__conn_sends(const struct sn_conn *c)
{
    return c->nsends;
}
