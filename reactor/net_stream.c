/*
 * Fiber reads (include/sn/stream.h): a stream connection's on_data keeps every byte in one
 * growing buffer; the reading fiber takes lines, blocks or everything from it, and waits on
 * a promise when what it asks for has not come yet.
 *
 * Slices stay valid until the next read: bytes are consumed (and the buffer compacted) only
 * at the start of a read. A growth while a slice is out copies the unread bytes into a new
 * buffer and keeps the old one (`retired`) until the next read; bytes only ever move there.
 *
 * Reading ahead: with nobody waiting (nor woken and about to run) and SN_STREAM_READ_AHEAD
 * bytes unread, the stream stops reading (sn_conn_set_reading: a firm stop; bytes in flight
 * are held by the receive path and presented at the resume); a read that consumed enough,
 * or a fiber about to wait, turns it on again. Between a wake-up and the fiber's run (one
 * loop turn) the mark is twice as high: a pause there, when a fast peer's bytes come in
 * bursts, would cancel the receive and copy what the kernel had posted twice (bench_echo_ab
 * at 64 KiB messages: a third of the throughput went there). A connection read as a stream belongs
 * to its fiber: the app does not call sn_conn_set_reading on it.
 *
 * Lending: after a read_some, a receive buffer of at least SN__NET_LEND_MIN bytes that comes
 * while nothing is buffered is not copied: the stream pins it (sn__conn_pin_input) and keeps
 * it in `lent`, in front of the buffer (up to SN__STREAM_LENT of them, while the core's lend
 * budget lasts; later bytes go to the buffer behind them). read_some hands lent[0] out as the
 * slice and unpins it at the next read; a line or block read first copies the lent bytes into
 * the buffer (flatten) and lends nothing while it waits. This saves the echo's two copies
 * (bench_echo_ab at 64 KiB: a quarter of the server's time was memcpy).
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

int sn__stream_start(struct sn_conn *c)
{
    struct sn__stream *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    sn_list_node_init(&st->link);
    c->stream = st;
    return 0;
}

void sn__stream_free(struct sn_conn *c)
{
    struct sn__stream *st = c->stream;
    if (!st)
        return;
    for (unsigned i = 0; i < st->nlent; i++)
        sn__lend_unpin(st->lent[i].lend);
    free(st->buf);
    free(st->retired);
    free(st);
    c->stream = NULL;
}

/* Unread bytes in the buffer (behind the lent ones). */
static size_t unread(const struct sn__stream *st)
{
    return st->len - st->pos;
}

/* Every unread byte: lent and buffered. */
static size_t unread_all(const struct sn__stream *st)
{
    return st->lent_bytes + unread(st);
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

/* Room for n more bytes at the end; false on -ENOMEM. */
static bool make_room(struct sn__stream *st, size_t n)
{
    if (st->pos == st->len && !st->slice_out)
        st->pos = st->len = 0;
    if (st->cap - st->len >= n)
        return true;
    size_t live = unread(st);
    if (!st->slice_out && st->cap - live >= n) {
        memmove(st->buf, st->buf + st->pos, live);
        st->pos = 0;
        st->len = live;
        return true;
    }
    size_t cap = st->cap ? st->cap : 16384;
    while (cap - live < n)
        cap *= 2;
    char *nb = malloc(cap);
    if (!nb)
        return false;
    if (live)
        memcpy(nb, st->buf + st->pos, live);
    if (st->slice_out && !st->retired)
        st->retired = st->buf; /* the slice points into it */
    else
        free(st->buf);
    /* An outstanding slice keeps its bytes in `retired`; its offsets into the new buffer
     * shift with pos, and `taken` is counted from pos: both stay right. */
    st->buf = nb;
    st->cap = cap;
    st->pos = 0;
    st->len = live;
    return true;
}

/* Keeps data[0..len) in the receive buffer itself, pinned, when the reader takes what is
 * there (read_some), nothing is buffered behind the lent bytes, and a pin can be had. */
static bool lend(struct sn_conn *c, struct sn__stream *st, const char *data, size_t len)
{
    size_t behind = unread(st) - (st->slice_out ? st->taken : 0); /* not yet read */
    if (!st->lending || behind || st->nlent == SN__STREAM_LENT)
        return false;
    struct sn__lend *l = sn__conn_pin_input(c, data, len);
    if (!l)
        return false;
    st->lent[st->nlent++] = (struct sn__lent){.data = data, .len = len, .lend = l};
    st->lent_bytes += len;
    return true;
}

/* Drops lent[0] (read, or copied into the buffer). */
static void unlend_first(struct sn__stream *st)
{
    sn__lend_unpin(st->lent[0].lend);
    st->lent_bytes -= st->lent[0].len;
    st->nlent--;
    memmove(&st->lent[0], &st->lent[1], st->nlent * sizeof st->lent[0]);
}

/*
 * Before a line or block read: copies the lent bytes into the buffer, in front of what it
 * holds, and gives the receive buffers back. No slice is out (the read consumed it).
 */
static int flatten(struct sn__stream *st)
{
    size_t front = st->lent_bytes, live = unread(st);
    if (!front)
        return 0;
    if (st->pos < front) {
        size_t cap = st->cap ? st->cap : 16384;
        while (cap < front + live)
            cap *= 2;
        char *nb = cap > st->cap ? malloc(cap) : st->buf;
        if (!nb)
            return -ENOMEM;
        if (live)
            memmove(nb + front, st->buf + st->pos, live);
        if (nb != st->buf) {
            free(st->buf);
            st->buf = nb;
            st->cap = cap;
        }
        st->pos = front;
        st->len = front + live;
    }
    while (st->nlent) {
        st->pos -= st->lent[st->nlent - 1].len;
        memcpy(st->buf + st->pos, st->lent[st->nlent - 1].data, st->lent[st->nlent - 1].len);
        st->lent_bytes -= st->lent[st->nlent - 1].len;
        sn__lend_unpin(st->lent[--st->nlent].lend);
    }
    return 0;
}

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
    if (!lend(c, st, data, len)) {
        if (len && !make_room(st, len)) {
            sn__conn_fail(c, -ENOMEM);
            return total;
        }
        memcpy(st->buf + st->len, data, len);
        st->len += len;
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
    if (st->slice_out) {
        st->pos += st->taken;
        st->taken = 0;
        st->slice_out = false;
        free(st->retired);
        st->retired = NULL;
        if (st->pos == st->len)
            st->pos = st->len = 0;
        pace(c, st);
    }
    if (st->lent_out) {
        st->lent_out = false;
        unlend_first(st);
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
    while (!(rc = ended(st)) && !(rc = flatten(st))) {
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
    while (!(rc = ended(st)) && !(rc = flatten(st))) {
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
        if (st->nlent) { /* the receive buffer itself: no copy */
            out->data = st->lent[0].data;
            out->len = st->lent[0].len;
            st->lent_out = true;
            st->lent_reads++;
            return 0;
        }
        if (unread(st))
            return give(st, out, unread(st), unread(st));
        if ((rc = wait_input(c, st)))
            return rc;
    }
    return rc;
}
