/*
 * Fiber reads (include/sn/stream.h): a stream connection's on_data keeps every byte in the
 * stream's queue of runs (net_stream_runs.c: receive buffers kept whole, lent or copied into
 * a block, and runs copied into one growing buffer); the reading fiber takes lines, blocks or
 * what is there from it, and waits on a promise when what it asks for has not come yet.
 * read_some hands out the head run as it is; a line or block read first copies the kept
 * buffers into the buffer (flatten) and keeps none whole while it waits.
 *
 * Reading ahead: with nobody waiting (nor woken and about to run) and SN_STREAM_READ_AHEAD
 * bytes unread, the stream stops reading (sn_conn_set_reading: a firm stop; bytes already
 * posted by the kernel are fed to a read_some stream at once, net_recv.c); a read that consumed
 * enough, or a fiber about to wait, turns it on again. Between a wake-up and the fiber's run (one
 * loop turn) the mark is twice as high: a pause there, when a fast peer's bytes come in
 * bursts, would cancel the receive at every burst (bench_echo_ab at 64 KiB messages: a third
 * of the throughput went there). A connection read as a stream belongs to its fiber: the
 * app does not call sn_conn_set_reading on it.
 *
 * An over-long line: the unread bytes up to its "\n" are dropped at once; when its "\n" has
 * not come yet, every unread byte is dropped and `skipping` makes on_data drop what comes
 * up to it, so nothing of the line is ever kept however long it goes on.
 */
#include "reactor/net_internal.h"

#include <sn/fiber.h>
#include <sn/stream.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Unread bytes of the buffer runs. */
static size_t unread(const struct sn__stream *st)
{
    return st->len - st->pos;
}

/* Every unread byte: lent and buffered. */
static size_t unread_all(const struct sn__stream *st)
{
    return st->held_bytes + unread(st);
}

/* Wakes the waiting fiber: to look again (err 0) or to fail with err. */
static void wake(struct sn__stream *st, int err)
{
    struct sn_promise *p = st->waiter;
    if (!p)
        return;
    st->waiter = NULL;
    st->woken = true;
    if (err)
        sn_promise_fail(p, err);
    else
        sn_promise_set(p, 0);
}

/* Reading on while someone waits, or less than the read-ahead is unread (twice as much
 * once the waiting fiber was woken: see the top); else off. */
static void pace(struct sn_conn *c, struct sn__stream *st)
{
    size_t ahead = st->woken ? 2 * SN_STREAM_READ_AHEAD : SN_STREAM_READ_AHEAD;
    bool full = !st->waiter && unread_all(st) >= ahead;
    if (full != st->full && !st->stopped && !st->err) {
        st->full = full;
        sn_conn_set_reading(c, !full);
    }
}

/* ---- receiving ------------------------------------------------------------------------ */

size_t sn__stream_feed(struct sn_conn *c, const char *data, size_t len)
{
    struct sn__stream *st = c->stream;
    size_t total = len;
    if (st->stopped || st->err)
        return total;
    if (st->skipping) {
        const char *nl = memchr(data, '\n', len);
        if (!nl)
            return total;
        st->skipping = false;
        size_t drop = (size_t)(nl - data) + 1;
        data += drop;
        len -= drop;
    }
    if (!sn__stream_keep(c, st, data, len)) {
        sn__conn_fail(c, -ENOMEM);
        return total;
    }
    wake(st, 0);
    pace(c, st);
    return total;
}

void sn__stream_eof(struct sn_conn *c)
{
    struct sn__stream *st = c->stream;
    st->eof = true;
    wake(st, 0);
}

void sn__stream_cancel(struct sn__stream *st)
{
    st->stopped = true;
    wake(st, -ECANCELED);
}

void sn__stream_stop(struct sn_conn *c, int err)
{
    struct sn__stream *st = c->stream;
    if (err == -ECANCELED) {
        sn__stream_cancel(st);
        return;
    }
    if (!st->err)
        st->err = err;
    wake(st, st->stopped ? -ECANCELED : st->err);
}

/* ---- reading (in the fiber) -------------------------------------------------------------- */

/* The stream of `c` for a read: checks the caller, consumes the last slice. */
static int enter(struct sn_conn *c, struct sn__stream **out)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    struct sn__stream *st = c->stream;
    if (!st)
        return -EINVAL;
    if (!sn_in_fiber())
        return -EDEADLK;
    if (st->waiter)
        return -EBUSY; /* another fiber waits in a read of this connection */
    if (st->slice_out || st->run_out) {
        sn__stream_consume(st);
        pace(c, st);
    }
    *out = st;
    return 0;
}

/* Why a read cannot go on, or 0. */
static int ended(const struct sn__stream *st)
{
    return st->stopped ? -ECANCELED : st->err;
}

/* Waits until something changes: more bytes, the end, an error. */
static int wait_input(struct sn_conn *c, struct sn__stream *st)
{
    if (st->eof)
        return SN_EOF;
    struct sn_future *f;
    st->waiter = sn_promise_new(&f);
    pace(c, st); /* reading on: someone waits */
    int rc = sn_await(f, NULL);
    st->woken = false; /* running: what comes from now on may pause reading again */
    return rc ? rc : ended(st);
}

static int give(struct sn__stream *st, struct sn_slice *out, size_t len, size_t taken)
{
    out->data = st->buf + st->pos;
    out->len = len;
    st->taken = taken;
    st->slice_out = true;
    return 0;
}

/* An over-long line: report its first `max` bytes, drop the rest of it (see the top). */
static int too_long(struct sn__stream *st, size_t max, struct sn_slice *out)
{
    const char *p = st->buf + st->pos;
    size_t rest = unread(st);
    const char *nl = memchr(p + max, '\n', rest - max);
    give(st, out, max, nl ? (size_t)(nl - p) + 1 : rest);
    st->skipping = !nl;
    return -EMSGSIZE;
}

int sn_conn_read_line(struct sn_conn *c, size_t max, struct sn_slice *line)
{
    struct sn__stream *st;
    int rc = enter(c, &st);
    if (rc)
        return rc;
    if (!max)
        max = c->lim.line_max;
    if (max > c->lim.input_max)
        max = c->lim.input_max;
    size_t scanned = 0;
    st->lending = false;
    while (!(rc = ended(st)) && !(rc = sn__stream_flatten(c, st))) {
        const char *p = st->buf + st->pos;
        size_t n = unread(st), look = n < max + 2 ? n : max + 2;
        const char *nl = scanned < look ? memchr(p + scanned, '\n', look - scanned) : NULL;
        if (nl) {
            size_t end = (size_t)(nl - p), len = end - (end && p[end - 1] == '\r');
            if (len > max)
                return too_long(st, max, line);
            return give(st, line, len, end + 1);
        }
        if (n >= max + 2)
            return too_long(st, max, line);
        scanned = look;
        if ((rc = wait_input(c, st)))
            return rc;
    }
    return rc;
}

int sn_conn_read_exact(struct sn_conn *c, size_t n, struct sn_slice *out)
{
    struct sn__stream *st;
    int rc = enter(c, &st);
    if (rc)
        return rc;
    if (n > c->lim.input_max)
        return -EMSGSIZE;
    st->lending = false;
    while (!(rc = ended(st)) && !(rc = sn__stream_flatten(c, st))) {
        if (unread(st) >= n)
            return give(st, out, n, n);
        if ((rc = wait_input(c, st)))
            return rc;
    }
    return rc;
}

int sn_conn_read_some(struct sn_conn *c, struct sn_slice *out)
{
    struct sn__stream *st;
    int rc = enter(c, &st);
    if (rc)
        return rc;
    st->lending = true;
    while (!(rc = ended(st))) {
        if (st->nruns && st->runs[0].data) { /* a receive buffer, or its copy, as it is */
            out->data = st->runs[0].data;
            out->len = st->runs[0].len;
            st->run_out = true;
            st->lent_reads += st->runs[0].lend != NULL;
            return 0;
        }
        if (st->nruns) /* a copied run: up to the next lent one */
            return give(st, out, st->runs[0].len, st->runs[0].len);
        if ((rc = wait_input(c, st)))
            return rc;
    }
    return rc;
}
