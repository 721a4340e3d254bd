/*
 * Receiving on a connection: multishot recv with buffers picked by the kernel from the core's
 * provided buffer ring, or (fallback) one plain recv at a time into a per-connection buffer;
 * then delivery to on_data, keeping what it leaves unconsumed.
 *
 * A buffer from the ring goes back to it as soon as on_data returned (what was not consumed
 * is copied out first), so the ring only runs dry when more completions than buffers are
 * reaped in one batch; the kernel then ends the multishot recv with -ENOBUFS and it is simply
 * armed again. Exception: a buffer lent to output or pinned by a stream (net_lend.c) goes
 * back when its last reference is dropped.
 *
 * Held input: while reading is off (the app's sn_conn_set_reading(false), or backpressure:
 * output over limits.output_high) on_data is not called at all. The receive is cancelled at
 * once, and whatever was already on its way (one plain recv buffer, or completions already
 * posted from the ring) is appended to the input buffer, behind what on_data left unconsumed;
 * an EOF is held too, so it never overtakes data (a stream, which stops reading only to
 * stop receiving, takes such bytes at once: stream_takes). When reading resumes, a task
 * (sn__conn_repost) presents the held input from the run queue, even if no new byte ever
 * comes, and then the held EOF; no new receive starts before that.
 *
 * input_max: checked on what on_data leaves only when it returns still reading. An app that
 * stops (itself, or by output over output_high) may leave more: nothing new is received
 * until it reads again, so that input cannot grow. Held bytes are bounded apart (hold_input).
 */
#include "reactor/net_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void recv_cb(struct sn__io_op *op, int res, uint32_t flags);

/* A receive that sn__net_inject_eagain made a NOP: it ends as the kernel's -EAGAIN does. */
static void eagain_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)res, (void)flags;
    recv_cb(op, -EAGAIN, 0);
}

/* The connection's receive: multishot into the buffer ring, or one into its own buffer. */
static void prep_recv(struct sn_conn *c, struct io_uring_sqe *sqe)
{
    if (c->bufring) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = SN__NET_BGID;
    } else {
        io_uring_prep_recv(sqe, c->fd, c->rbuf, SN__NET_BUFSZ, 0);
    }
    sn__again_poll_first(c, sqe, c->ragain);
    sn__conn_sqe_file(c, sqe);
}

int sn__conn_arm_recv(struct sn_conn *c)
{
    if (!c->bufring && !c->rbuf && !(c->rbuf = malloc(SN__NET_BUFSZ)))
        return -ENOMEM;
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return -EBUSY;
    if (sn_unlikely(c->nc->eagain_recvs)) {
        c->nc->eagain_recvs--; /* a test's faked -EAGAIN (sn__net_inject_eagain) */
        io_uring_prep_nop(sqe);
        c->rop.cb = eagain_cb;
    } else {
        prep_recv(c, sqe);
        c->rop.cb = recv_cb;
    }
    sn__sqe_bind_as(sqe, &c->rop, c->tag);
    return 0;
}

/* Appends data[0..len) to the input buffer; false when over `limit` or out of memory. */
static bool keep_input(struct sn_conn *c, const char *data, size_t len, size_t limit)
{
    size_t need = c->ilen + len;
    if (need > limit)
        return false;
    if (need > c->icap) {
        size_t cap = c->icap ? c->icap : 4096;
        while (cap < need)
            cap *= 2;
        char *p = realloc(c->ibuf, cap);
        if (!p)
            return false;
        c->ibuf = p;
        c->icap = cap;
    }
    memcpy(c->ibuf + c->ilen, data, len);
    c->ilen += len;
    c->nc->counts.held_copied += len;
    return true;
}

/* Calls on_data; returns how much it consumed (clamped). Caller holds a ref. */
static size_t call_on_data(struct sn_conn *c, const char *data, size_t len)
{
    c->repost = false; /* everything held is in this call */
    c->held = 0;
    size_t used;
    if (c->stream)
        return sn__stream_feed(c, data, len);
    if (c->ops && c->ops->on_line)
        return sn__lines_feed(c, data, len);
    if (!c->ops || !c->ops->on_data)
        return len;
    used = c->ops->on_data(c, c->arg, data, len);
    return used > len ? len : used;
}

/*
 * True when on_data returned with reading stopped: by the app, or by backpressure (its output
 * over output_high, as an app that stops consuming until its backlog falls leaves it). What
 * it left then is not counted against input_max: no receive starts before the app reads again
 * (the held input is presented first), so nothing grows meanwhile, and the limit applies to
 * what on_data leaves once it returns still reading.
 */
static bool stopped_reading(const struct sn_conn *c)
{
    return !c->reading || c->paused || sn__conn_over(c);
}

/* What on_data may leave unconsumed: input_max, plus a block that line mode gathers. */
static size_t input_limit(const struct sn_conn *c)
{
    return c->lim.input_max + c->block_need;
}

/* After on_data: more than input_max left unconsumed (while reading) ends the connection. */
static int check_left(struct sn_conn *c)
{
    if (c->want_close || c->aborting) {
        c->ilen = 0; /* nobody will read it */
        return 0;
    }
    return c->ilen > input_limit(c) && !stopped_reading(c) ? -EMSGSIZE : 0;
}

/* Presents the input buffer to on_data and keeps what it leaves. Caller holds a ref. */
static int present_buffer(struct sn_conn *c)
{
    size_t used = call_on_data(c, c->ibuf, c->ilen);
    if (used) {
        c->ilen -= used;
        memmove(c->ibuf, c->ibuf + used, c->ilen);
    }
    return check_left(c);
}

/* Hands new bytes to the app; 0 or the error that must end the connection. */
static int deliver(struct sn_conn *c, const char *data, size_t len)
{
    if (c->ilen == 0) {
        size_t used = call_on_data(c, data, len);
        if (used == len || c->want_close || c->aborting)
            return 0;
        size_t limit = stopped_reading(c) ? SIZE_MAX : input_limit(c);
        if (!keep_input(c, data + used, len - used, limit))
            return limit == SIZE_MAX ? -ENOMEM : -EMSGSIZE;
        return 0;
    }
    /* Behind what is held; the limit applies to what on_data then leaves. */
    if (!keep_input(c, data, len, SIZE_MAX))
        return -ENOMEM;
    return present_buffer(c);
}

/* True while on_data may be called: the app reads, no backpressure pause, and nothing held
 * waits to go first. */
static bool presenting(const struct sn_conn *c)
{
    return c->reading && !c->paused && !c->repost;
}

static void call_on_eof(struct sn_conn *c)
{
    if (c->stream)
        sn__stream_eof(c);
    else if (c->ops && c->ops->on_eof)
        c->ops->on_eof(c, c->arg);
    else
        sn_ignore(sn_conn_close(c));
}

static void on_eof(struct sn_conn *c)
{
    c->eof = true;
    if (c->want_close || c->aborting)
        return;
    if (!presenting(c)) {
        c->eof_held = true; /* after the held input, once reading resumes */
        return;
    }
    call_on_eof(c);
}

/*
 * Keeps bytes that arrived while reading is off. They are counted apart from what on_data
 * left: at most what was in flight when reading stopped, bounded generously (a peer that
 * got more past the cancel than that is cut with -EMSGSIZE).
 */
static bool held_fits(const struct sn_conn *c, size_t len)
{
    return c->held + len <= c->lim.input_max + SN__NET_HELD_SLACK;
}

static int hold_input(struct sn_conn *c, const char *data, size_t len)
{
    if (!held_fits(c, len))
        return -EMSGSIZE;
    if (!keep_input(c, data, len, SIZE_MAX))
        return -ENOMEM;
    c->held += len;
    return 0;
}

/*
 * A stream turns reading off itself only to stop receiving (its read-ahead is full, and it
 * takes input at any time): while its fiber reads what is there (read_some), what the kernel
 * had posted before the cancel took effect goes into the stream at once, lent or copied once,
 * rather than held in the input buffer and copied into the stream again at the resume (a
 * third of sn-echo's bytes at 64 KiB messages took that way). Bounded as held input is. A
 * line or block reader's input is held as before: held bytes of an over-long line are
 * dropped at the resume and never grow the stream's buffer.
 */
static bool stream_takes(const struct sn_conn *c)
{
    /* Not while held input waits (a line reader's, before this read_some): it is presented
     * first at the resume, and new bytes must not overtake it. */
    return c->stream && c->stream->lending && !c->paused && !c->repost && !c->ilen;
}

static int feed_stopped_stream(struct sn_conn *c, const char *data, size_t len)
{
    if (!held_fits(c, len))
        return -EMSGSIZE;
    c->held += len; /* until the next presenting call */
    sn__stream_feed(c, data, len);
    return 0;
}

static void recv_result(struct sn_conn *c, int res, const char *data, bool cancelled)
{
    if (res > 0) {
        c->ragain = 0;
        sn__conn_touch(c);
        sn__conn_note_rx(c);
        c->nc->counts.recv_bytes += (size_t)res;
        if (c->want_close || c->aborting || c->eof)
            return; /* the app is done reading: drop it */
        int err;
        if (presenting(c))
            err = deliver(c, data, (size_t)res);
        else if (stream_takes(c))
            err = feed_stopped_stream(c, data, (size_t)res);
        else /* held until reading resumes; at most what was in flight when it stopped */
            err = hold_input(c, data, (size_t)res);
        if (err)
            sn__conn_fail(c, err);
    } else if (res == 0) {
        on_eof(c);
    } else if (res == -ENOBUFS && c->bufring) {
        /* The ring ran dry for a moment: progress arms the recv again. */
    } else if (res == -EAGAIN) {
        /* The kernel stopped waiting for bytes (its async poll's retry limit, as for a send:
         * net_send.c): nothing was lost, progress arms the recv again, after a back-off when
         * it keeps ending so (net_again.c). Not when it will not be armed again. */
        if (!c->aborting && !c->want_close)
            sn__conn_again(c, false);
    } else if (res == -ECANCELED && cancelled) {
        /* We stopped it (pause or close). */
    } else if (res == -ECANCELED) {
        sn__conn_stop(c); /* the reactor cancelled it: it is stopping */
    } else {
        sn__conn_fail(c, res);
    }
}

static void recv_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    struct sn_conn *c = SN_CONTAINER_OF(op, struct sn_conn, rop);
    const char *data = c->rbuf;
    int bid = -1;

    if (c->bufring && (flags & IORING_CQE_F_BUFFER)) {
        bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
        data = sn__netc_buf(c->nc, (unsigned)bid);
    }
    bool cancelled = c->rcancel;
    if (!(flags & IORING_CQE_F_MORE))
        c->rcancel = false; /* the op is over; a new one starts clean */
    c->refs++;
    struct sn__netc *nc = c->nc;
    int outer_bid = nc->cur_bid; /* -1: on_data calls do not nest, but keep it right if */
    size_t outer_len = nc->cur_len;
    if (bid >= 0) {
        nc->lend[bid].presenting = true;
        nc->cur_bid = bid;
        nc->cur_len = res > 0 ? (size_t)res : 0;
    }
    recv_result(c, res, data, cancelled);
    nc->cur_bid = outer_bid;
    nc->cur_len = outer_len;
    c->refs--;
    if (bid >= 0) {
        struct sn__lend *l = &c->nc->lend[bid];
        l->presenting = false;
        if (!l->refs)
            sn__netc_buf_return(c->nc, (unsigned)bid);
    }
    sn__conn_progress(c);
}

/* ---- presenting held input ------------------------------------------------------------ */

static void repost_run(struct sn_task *t)
{
    struct sn_conn *c = SN_CONTAINER_OF(t, struct sn_conn, repost_task);
    c->repost_queued = false;
    /* Still wanted: reading is on (also for backpressure), nothing closed it, no new bytes
     * presented it meanwhile. Otherwise it stays held until the next resume. */
    if (c->repost && c->reading && !c->paused && !c->want_close && !c->aborting) {
        int err = 0;
        if (c->ilen)
            err = present_buffer(c); /* clears repost */
        c->repost = false;
        if (err) {
            sn__conn_fail(c, err);
        } else if (c->eof_held && c->reading && !c->paused && !c->want_close && !c->aborting) {
            c->eof_held = false;
            call_on_eof(c);
        }
    }
    c->refs--; /* the task's */
    sn__conn_progress(c);
}

void sn__conn_repost(struct sn_conn *c)
{
    if (c->fin_queued || c->want_close || c->aborting || (!c->ilen && !c->eof_held))
        return;
    c->repost = true;
    if (c->repost_queued)
        return;
    c->repost_queued = true;
    c->refs++; /* dropped by the task: the connection cannot finish before it ran */
    sn_task_init(&c->repost_task, repost_run);
    sn_schedule(&c->repost_task);
}
