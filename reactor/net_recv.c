/*
 * Receiving on a connection: multishot recv with buffers picked by the kernel from the core's
 * provided buffer ring, or (fallback) one plain recv at a time into a per-connection buffer;
 * then delivery to on_data, keeping what it leaves unconsumed.
 *
 * A buffer from the ring goes back to it as soon as on_data returned (what was not consumed
 * is copied out first), so the ring only runs dry when more completions than buffers are
 * reaped in one batch; the kernel then ends the multishot recv with -ENOBUFS and it is simply
 * armed again.
 */
#include "reactor/net_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void recv_cb(struct sn__io_op *op, int res, uint32_t flags);

bool sn__conn_arm_recv(struct sn_conn *c)
{
    struct io_uring_sqe *sqe = sn__sqe_get();
    if (!sqe)
        return false;
    if (c->bufring) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = SN__NET_BGID;
    } else {
        if (!c->rbuf && !(c->rbuf = malloc(SN__NET_BUFSZ)))
            return false;
        io_uring_prep_recv(sqe, c->fd, c->rbuf, SN__NET_BUFSZ, 0);
    }
    c->rop.cb = recv_cb;
    sn__sqe_bind(sqe, &c->rop);
    return true;
}

/* Keeps data[0..len) after what is already held; false when over the input limit. */
static bool keep_input(struct sn_conn *c, const char *data, size_t len)
{
    size_t need = c->ilen + len;
    if (need > c->lim.input_max)
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
    return true;
}

/* Calls on_data; returns how much it consumed (clamped). Caller holds a ref. */
static size_t call_on_data(struct sn_conn *c, const char *data, size_t len)
{
    if (!c->ops || !c->ops->on_data)
        return len;
    size_t used = c->ops->on_data(c, c->arg, data, len);
    return used > len ? len : used;
}

/* Hands data to the app; 0 or the error that must end the connection. */
static int deliver(struct sn_conn *c, const char *data, size_t len)
{
    if (c->ilen == 0) {
        size_t used = call_on_data(c, data, len);
        if (used == len || c->want_close || c->aborting)
            return 0;
        return keep_input(c, data + used, len - used) ? 0 : -EMSGSIZE;
    }
    if (!keep_input(c, data, len))
        return -EMSGSIZE;
    size_t used = call_on_data(c, c->ibuf, c->ilen);
    if (used) {
        c->ilen -= used;
        memmove(c->ibuf, c->ibuf + used, c->ilen);
    }
    return 0;
}

static void on_eof(struct sn_conn *c)
{
    c->eof = true;
    if (c->want_close || c->aborting)
        return;
    if (c->ops && c->ops->on_eof)
        c->ops->on_eof(c, c->arg);
    else
        sn_conn_close(c);
}

static void recv_result(struct sn_conn *c, int res, const char *data, bool cancelled)
{
    if (res > 0) {
        sn__conn_touch(c);
        if (c->want_close || c->aborting || c->eof)
            return; /* the app is done reading: drop it */
        int err = deliver(c, data, (size_t)res);
        if (err)
            sn__conn_fail(c, err);
    } else if (res == 0) {
        on_eof(c);
    } else if (res == -ENOBUFS && c->bufring) {
        /* The ring ran dry for a moment: progress arms the recv again. */
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
    struct sn_conn *c = (struct sn_conn *)((char *)op - offsetof(struct sn_conn, rop));
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
    recv_result(c, res, data, cancelled);
    c->refs--;
    if (bid >= 0)
        sn__netc_buf_return(c->nc, (unsigned)bid);
    sn__conn_progress(c);
}
