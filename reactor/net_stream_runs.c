/*
 * A stream's unread input (net_stream.c reads it): an ordered queue of runs, each a receive
 * buffer held lent (pinned in the core's ring, no copy), a receive buffer copied whole into a
 * block of its own, or a run of bytes copied into the stream's one growing buffer. Buffer
 * runs' bytes lie in the buffer in queue order, so a buffer run is just a length: the head
 * buffer run starts at `pos`.
 *
 * While the reader takes what is there (its last read was sn_conn_read_some), a receive
 * buffer of at least SN__NET_LEND_MIN bytes is pinned (sn__conn_pin_input) and queued as it
 * is, also behind copied bytes; when it cannot be (the core's lend budget is spent, or the
 * stream's SN__STREAM_LENT lent runs are queued), it is copied into a block, which read_some
 * hands out and sn_conn_write_input references as it does a lent buffer. So a refused lend
 * costs one copy of one buffer, not two copies (in, then out) of everything behind it until
 * the reader caught up (bench_echo_ab at 64 KiB: 1.7 copies per echoed byte before, see
 * docs/PERFORMANCE.md). Small receives, and all input of a line or block reader, go to the
 * buffer.
 *
 * Slices stay valid until the next read: bytes are consumed (and the buffer compacted) only
 * at the start of a read (sn__stream_consume). A growth while a slice is out copies the
 * unread bytes into a new buffer and keeps the old one (`retired`) until the next read.
 */
#include "reactor/net_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void pop_run(struct sn__stream *st);

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
    while (st->nruns)
        pop_run(st);
    free(st->buf);
    free(st->retired);
    free(st);
    c->stream = NULL;
}

/* ---- the queue ------------------------------------------------------------------------- */

/* Appends `len` bytes (already at the end of the buffer) to the queue. */
static void push_copied(struct sn__stream *st, size_t len)
{
    struct sn__run *last = st->nruns ? &st->runs[st->nruns - 1] : NULL;
    if (last && !last->data) {
        last->len += len;
        return;
    }
    assert(st->nruns < SN__STREAM_RUNS);
    st->runs[st->nruns++] = (struct sn__run){.len = len};
}

/* Appends a lent or block run; the caller checked room_for_held. */
static void push_held(struct sn__stream *st, struct sn__run r)
{
    st->runs[st->nruns++] = r;
    st->held_bytes += r.len;
    st->nlent += r.lend != NULL;
}

/* Whether a lent or block run may be queued: two slots left (one for a buffer run). */
static bool room_for_held(const struct sn__stream *st)
{
    return st->nruns + 2 <= SN__STREAM_RUNS;
}

/* A block for len bytes with one reference, from the core's cache when it fits; NULL. */
static struct sn__sblock *sblock_new(struct sn__netc *nc, size_t len)
{
    struct sn__sblock *b = len <= SN__NET_BUFSZ ? nc->sfree : NULL;
    if (b) {
        nc->sfree = b->next;
        nc->nsfree--;
    } else {
        size_t cap = len < SN__NET_BUFSZ ? SN__NET_BUFSZ : len;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->cap = cap;
    }
    b->nc = nc;
    b->refs = 1;
    sn__netc_ref(nc);
    return b;
}

void sn__sblock_release(void *arg)
{
    struct sn__sblock *b = arg;
    if (--b->refs)
        return;
    struct sn__netc *nc = b->nc;
    if (b->cap == SN__NET_BUFSZ && nc->nsfree < SN__NET_SBLOCK_CACHE) {
        b->next = nc->sfree;
        nc->sfree = b;
        nc->nsfree++;
    } else {
        free(b);
    }
    sn__netc_unref(nc);
}

void sn__sblock_cache_free(struct sn__netc *nc)
{
    for (struct sn__sblock *b; (b = nc->sfree);) {
        nc->sfree = b->next;
        free(b);
    }
    nc->nsfree = 0;
}

/* Drops runs[0] (lent: unpinned; block: its reference; buffer run: its bytes consumed by
 * the caller). */
static void pop_run(struct sn__stream *st)
{
    struct sn__run *r = &st->runs[0];
    if (r->data)
        st->held_bytes -= r->len;
    if (r->lend) {
        sn__lend_unpin(r->lend);
        st->nlent--;
    } else if (r->blk) {
        sn__sblock_release(r->blk);
    }
    st->nruns--;
    memmove(&st->runs[0], &st->runs[1], st->nruns * sizeof st->runs[0]);
}

/* ---- receiving ------------------------------------------------------------------------- */

/* The buffer size for `need` bytes: from `cap` (16 KiB when there is none yet), doubled. */
static size_t grown_cap(size_t cap, size_t need)
{
    if (!cap)
        cap = 16384;
    while (cap < need)
        cap *= 2;
    return cap;
}

/* Room for n more bytes at the end of the buffer; false on -ENOMEM. */
static bool make_room(struct sn__stream *st, size_t n)
{
    if (st->pos == st->len && !st->slice_out)
        st->pos = st->len = 0;
    if (st->cap - st->len >= n)
        return true;
    size_t live = st->len - st->pos;
    if (!st->slice_out && st->cap - live >= n) {
        memmove(st->buf, st->buf + st->pos, live);
        st->pos = 0;
        st->len = live;
        return true;
    }
    size_t cap = grown_cap(st->cap, live + n);
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

/* Queues a copy of data[0..len) in a block of its own; false without memory for one. */
static bool hold_copy(struct sn_conn *c, struct sn__stream *st, const char *data, size_t len)
{
    struct sn__sblock *b = sblock_new(c->nc, len);
    if (!b)
        return false;
    memcpy(b->data, data, len);
    c->nc->counts.stream_copied += len;
    push_held(st, (struct sn__run){.data = b->data, .len = len, .blk = b});
    return true;
}

/* Queues data[0..len) lent when the reader takes what is there and a pin can be had, else
 * (a receive buffer the reader takes whole) copied into a block of its own; false when it
 * goes to the buffer (a line or block reader, a small receive, a full queue). */
static bool hold(struct sn_conn *c, struct sn__stream *st, const char *data, size_t len)
{
    if (!st->lending)
        return false;
    if (len < SN__NET_LEND_MIN) {
        c->nc->counts.lend_small++;
        return false;
    }
    if (!room_for_held(st)) {
        c->nc->counts.lend_slots++;
        return false;
    }
    struct sn__lend *l = NULL;
    if (st->nlent < SN__STREAM_LENT)
        l = sn__conn_pin_input(c, data, len);
    else
        c->nc->counts.lend_slots++;
    if (!l)
        return hold_copy(c, st, data, len);
    push_held(st, (struct sn__run){.data = data, .len = len, .lend = l});
    return true;
}

bool sn__stream_keep(struct sn_conn *c, struct sn__stream *st, const char *data, size_t len)
{
    if (!len || hold(c, st, data, len))
        return true;
    if (!make_room(st, len))
        return false;
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    push_copied(st, len);
    c->nc->counts.stream_copied += len;
    return true;
}

/* ---- reading --------------------------------------------------------------------------- */

void sn__stream_consume(struct sn__stream *st)
{
    if (st->slice_out) { /* the head copied run's first `taken` bytes */
        st->pos += st->taken;
        if (st->taken) {
            assert(st->nruns && !st->runs[0].data && st->runs[0].len >= st->taken);
            st->runs[0].len -= st->taken;
            if (!st->runs[0].len)
                pop_run(st);
        }
        st->taken = 0;
        st->slice_out = false;
        free(st->retired);
        st->retired = NULL;
        if (st->pos == st->len)
            st->pos = st->len = 0;
    }
    if (st->run_out) {
        st->run_out = false;
        pop_run(st);
    }
}

int sn__stream_flatten(struct sn_conn *c, struct sn__stream *st)
{
    if (!st->held_bytes)
        return 0;
    size_t total = st->held_bytes + (st->len - st->pos), cap = grown_cap(0, total);
    char *nb = malloc(cap), *p = nb;
    if (!nb)
        return -ENOMEM;
    const char *from = st->buf + st->pos;
    while (st->nruns) {
        struct sn__run *r = &st->runs[0];
        memcpy(p, r->data ? r->data : from, r->len);
        if (!r->data)
            from += r->len;
        p += r->len;
        pop_run(st);
    }
    c->nc->counts.stream_copied += total;
    free(st->buf);
    st->buf = nb;
    st->cap = cap;
    st->pos = 0;
    st->len = total;
    push_copied(st, total);
    return 0;
}
