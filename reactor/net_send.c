/*
 * Sending on a connection: the output is a list of chunks, either copies owned by libsn
 * (sn_conn_write appends to the last one while it has room, so many small replies share one
 * buffer) or the caller's memory (sn_conn_write_ref). At most one send is in flight per
 * connection; the flush (reactor/net_core.c) starts it once per turn with every queued chunk
 * as one iovec (sendmsg), or a plain send for a single piece. A send may be partial: the
 * completion consumes what left and queues the connection for the next flush.
 *
 * While a send is in flight its chunks stay untouched (appending after the captured length is
 * fine, chunks never move); they are released only after its completion, or in the final
 * step once nothing is in flight.
 *
 * A send may also end with -EAGAIN and nothing sent: the kernel waits for room in an async
 * poll that it re-arms a bounded number of times (APOLL_MAX_RETRY, 128 on Linux 6.x); past
 * that it hands the send to an io-wq worker, which tries the O_NONBLOCK socket once and
 * posts its -EAGAIN (seen 2-5 times in 60 runs of faults::flood_echo_never_reading, where
 * sn-echo's output waits for hundreds of ms on a client that does not read). It is no error: the
 * output stays queued and goes with the next flush, in a new send that waits afresh (before, the
 * connection failed and its unsent output was dropped); that send polls first, and after
 * repeated -EAGAINs it waits for a back-off (net_again.c), so a socket that keeps failing is
 * not sent to at every loop turn.
 *
 * Without an SQE the output stays queued and the connection waits for the loop's next submit
 * (sn__conn_wait_sqe). While the reactor stops, each send is linked to a timeout that ends at
 * the connection's stop deadline; a send the reactor cancels at stop is simply made again,
 * until the deadline, after which the output is dropped and the connection reset.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void send_cb(struct sn__io_op *op, int res, uint32_t flags);

/* A send that sn__net_inject_eagain made a NOP: it ends as the kernel's -EAGAIN does. */
static void eagain_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)res;
    send_cb(op, -EAGAIN, flags);
}

void sn__chunk_free(struct sn__chunk *k)
{
    if (k->release)
        k->release(k->release_arg);
    if (k->pool)
        sn__pool_put(k->pool, k);
    else
        free(k);
}

static void chunk_append(struct sn_conn *c, struct sn__chunk *k)
{
    k->next = NULL;
    if (c->otail)
        c->otail->next = k;
    else
        c->ohead = k;
    c->otail = k;
}

void sn__conn_out_drop(struct sn_conn *c)
{
    struct sn__chunk *k = c->ohead;
    while (k) {
        struct sn__chunk *next = k->next;
        sn__chunk_free(k);
        k = next;
    }
    c->ohead = c->otail = NULL;
    c->backlog = 0;
}

/* Drops n sent bytes from the front; keeps the last owned chunk for reuse. */
static void consume(struct sn_conn *c, size_t n)
{
    c->backlog -= n;
    c->sent_total += n;
    while (c->ohead) {
        struct sn__chunk *k = c->ohead;
        size_t left = k->len - k->off;
        size_t take = n < left ? n : left;
        k->off += take;
        n -= take;
        if (k->off < k->len)
            break;
        if (k == c->otail && k->cap) {
            k->off = k->len = 0;
            break;
        }
        c->ohead = k->next;
        if (!c->ohead)
            c->otail = NULL;
        sn__chunk_free(k);
    }
}

int sn__conn_write_err(const struct sn_conn *c)
{
    return c->err && c->err != -ECANCELED ? c->err : -EPIPE;
}

static int writable(const struct sn_conn *c)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (c->wr_closed)
        return sn__conn_write_err(c);
    return 0;
}

/* Counts queued bytes and asks for a flush (and maybe a pause of reading). */
static void queued(struct sn_conn *c, size_t len)
{
    c->backlog += len;
    sn__netc_mark_dirty(c->nc, c);
    if (c->backlog > c->lim.output_high) {
        c->drain_armed = true;
        /* A full batch is waiting: corking gains nothing, send it now. */
        sn__conn_send(c);
        if (!c->paused)
            sn__conn_progress(c);
    }
}

int sn_conn_write(struct sn_conn *c, const void *data, size_t len)
{
    int rc = writable(c);
    if (rc || len == 0)
        return rc;
    if (sn_unlikely(c->rtail != NULL))
        return sn__reply_behind(c, data, len);
    return sn__conn_out_copy(c, data, len);
}

/*
 * Copies into the room of the last chunk, then into new chunks of SN__NET_CHUNK bytes, never
 * bigger ones: a big malloc is mmapped and unmapped again at every write of that size (page
 * faults on every byte copied, and a TLB shootdown at each unmap), while chunks of this size
 * come back from the allocator warm. All are allocated before anything is copied, so a
 * failure queues nothing.
 */
int sn__conn_out_copy(struct sn_conn *c, const void *data, size_t len)
{
    c->nc->counts.out_copied += len;
    struct sn__chunk *t = c->otail, *head = NULL, **link = &head;
    size_t room = t && t->cap ? t->cap - t->len : 0;
    size_t first = len < room ? len : room;
    for (size_t left = len - first; left;) {
        struct sn__chunk *k = malloc(sizeof *k + SN__NET_CHUNK);
        if (!k) {
            for (struct sn__chunk *next; head; head = next) {
                next = head->next;
                free(head);
            }
            return -ENOMEM;
        }
        memset(k, 0, sizeof *k);
        k->data = k->buf;
        k->cap = SN__NET_CHUNK;
        k->len = left < SN__NET_CHUNK ? left : SN__NET_CHUNK;
        left -= k->len;
        *link = k;
        link = &k->next;
    }
    const char *p = data;
    if (first) {
        memcpy(t->data + t->len, p, first);
        t->len += first;
        p += first;
    }
    for (struct sn__chunk *k = head, *next; k; k = next) {
        next = k->next;
        memcpy(k->buf, p, k->len);
        p += k->len;
        chunk_append(c, k);
    }
    queued(c, len);
    return 0;
}

struct sn__chunk *sn__chunk_ref(const void *data, size_t len, void (*release)(void *arg),
                                void *release_arg)
{
    struct sn__chunk *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->data = (char *)data;
    k->len = len;
    k->release = release;
    k->release_arg = release_arg;
    return k;
}

void sn__conn_out_splice(struct sn_conn *c, struct sn__chunk *head, struct sn__chunk *tail,
                         size_t len)
{
    if (c->otail)
        c->otail->next = head;
    else
        c->ohead = head;
    c->otail = tail;
    tail->next = NULL;
    queued(c, len);
}

int sn_conn_write_ref(struct sn_conn *c, const void *data, size_t len, void (*release)(void *arg),
                      void *release_arg)
{
    int rc = writable(c);
    if (rc)
        return rc;
    struct sn__chunk *k = sn__chunk_ref(data, len, release, release_arg);
    if (!k)
        return -ENOMEM;
    if (sn_unlikely(c->rtail != NULL))
        return sn__reply_behind_ref(c, k);
    sn__conn_out_splice(c, k, k, len);
    return 0;
}

/* ---- sn_conn_flush ------------------------------------------------------------------------ */

void sn__conn_flushed(struct sn_conn *c, int err)
{
    struct sn__sched *s = sn__tls_sched;
    struct sn__flushw *w;
    while ((w = c->fhead) && (err || w->target <= c->sent_total)) {
        c->fhead = w->next;
        if (!c->fhead)
            c->ftail = NULL;
        struct sn_promise *p = w->p;
        sn__sched_obj_put(s, w);
        if (err)
            sn_promise_fail(p, err);
        else
            sn_promise_set(p, 0);
    }
}

struct sn_future *sn_conn_flush(struct sn_conn *c)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (sn_core_id() != c->core)
        return sn_failed(-EXDEV);
    if (c->aborting || c->fin_queued || c->finished)
        return sn_failed(sn__conn_write_err(c));
    if (c->backlog == 0)
        return sn_ready(0);
    struct sn__flushw *w = sn__sched_obj(s);
    struct sn_future *f;
    w->next = NULL;
    w->target = c->sent_total + c->backlog;
    w->p = sn_promise_new(&f);
    if (c->ftail)
        c->ftail->next = w;
    else
        c->fhead = w;
    c->ftail = w;
    return f;
}

/* The stop deadline passed with output unsent: reset, so the peer cannot take a cut reply
 * for a whole one. */
static void stop_give_up(struct sn_conn *c)
{
    c->linger0 = true;
    sn__conn_fail(c, -ECANCELED);
}

/* One SQE for the send; while the reactor stops, two: the send and a link timeout that ends
 * it at the stop deadline. NULL when there is none (or the deadline passed: given up). */
static struct io_uring_sqe *send_sqe(struct sn_conn *c, struct io_uring_sqe **lt)
{
    *lt = NULL;
    if (sn_unlikely(c->stop_deadline && sn__net_final())) {
        stop_give_up(c); /* the loop is over: nothing would send it */
        return NULL;
    }
    if (!c->stop_deadline)
        return sn__io_sqe();
    uint64_t now = sn_now_ns();
    if (now + 1000000u >= c->stop_deadline) {
        stop_give_up(c);
        return NULL;
    }
    struct io_uring_sqe *sqe;
    if (!sn__net_sqes(&sqe, lt))
        return NULL;
    uint64_t left = c->stop_deadline - now;
    c->stop_ts.tv_sec = (long long)(left / 1000000000u);
    c->stop_ts.tv_nsec = (long long)(left % 1000000000u);
    return sqe;
}

/* A send of the connection's first n iovecs (one plain send when n is 1). */
static void prep_send(struct sn_conn *c, struct io_uring_sqe *sqe, unsigned n)
{
    if (n == 1) {
        io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, c->iov[0].iov_len, MSG_NOSIGNAL);
    } else {
        memset(&c->msg, 0, sizeof c->msg);
        c->msg.msg_iov = c->iov;
        c->msg.msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
    }
    sn__again_poll_first(c, sqe, c->sagain);
    sn__conn_sqe_file(c, sqe);
}

void sn__conn_send(struct sn_conn *c)
{
    if (c->fin_queued || c->aborting || c->sop.inflight || c->swait)
        return; /* (swait: after the back-off, net_again.c) */
    unsigned n = 0;
    for (struct sn__chunk *k = c->ohead; k && n < SN__NET_IOV; k = k->next)
        if (k->len > k->off)
            c->iov[n++] = (struct iovec){k->data + k->off, k->len - k->off};
    if (n == 0) {
        consume(c, 0); /* frees empty references */
        sn__conn_progress(c);
        return;
    }
    struct io_uring_sqe *lt, *sqe = send_sqe(c, &lt);
    if (!sqe) {
        if (!c->aborting)
            sn__conn_wait_sqe(c); /* the output stays queued; sent after the next submit */
        return;
    }
    if (sn_unlikely(c->nc->eagain_sends)) {
        c->nc->eagain_sends--; /* a test's faked -EAGAIN (sn__net_inject_eagain) */
        io_uring_prep_nop(sqe);
        c->sop.cb = eagain_cb;
    } else {
        prep_send(c, sqe, n);
        c->sop.cb = send_cb;
    }
    sn__sqe_bind_as(sqe, &c->sop, c->tag);
    if (lt) {
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_prep_link_timeout(lt, &c->stop_ts, 0);
        io_uring_sqe_set_data64(lt, 0);
    }
    c->nsends++;
}

/* The backlog fell to output_low after having been over output_high: tell the app once. */
static void maybe_drained(struct sn_conn *c)
{
    if (!c->drain_armed || c->backlog > c->lim.output_low)
        return;
    c->drain_armed = false;
    if (c->wr_closed || c->aborting || c->fin_queued || !c->ops || !c->ops->on_drain)
        return;
    c->refs++;
    c->ops->on_drain(c, c->arg);
    c->refs--;
}

static void send_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct sn_conn *c = SN_CONTAINER_OF(op, struct sn_conn, sop);
    bool cancelled = c->scancel;
    c->scancel = false;
    if (res >= 0) {
        c->sagain = 0;
        sn__conn_touch(c);
        consume(c, (size_t)res);
        if (c->fhead) {
            c->refs++; /* a continuation may close the connection: not under us */
            sn__conn_flushed(c, 0);
            c->refs--;
        }
        if (c->backlog && !c->aborting)
            sn__netc_mark_dirty(c->nc, c);
        maybe_drained(c);
    } else if (res == -EAGAIN) {
        /* Nothing sent, the kernel stopped waiting (see the top): progress queues the
         * output for the next flush, after a back-off when it keeps failing (net_again.c).
         * An aborting connection drops it instead. */
        if (!c->aborting)
            sn__conn_again(c, true);
    } else if (res == -ECANCELED && !cancelled && !c->aborting && sn_stopping()) {
        /* The reactor cancelled it at stop, or the stop deadline's link timeout ended it:
         * the output is sent again until the deadline (send_sqe gives up after it). */
        sn__conn_stop(c);
        return;
    } else if (!(res == -ECANCELED && cancelled)) {
        /* -EPIPE / -ECONNRESET from the peer, or the send's own error. */
        sn__conn_fail(c, res);
        return;
    }
    sn__conn_progress(c);
}
