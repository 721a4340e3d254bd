/*
 * Lending receive buffers (the core's provided ring, net_core.c) instead of copying them:
 * on_data may lend the buffer it is given to the output of any connection of the core
 * (sn_conn_write_input); it then goes back when the last write that refers to it is released.
 * A stream (net_stream_runs.c) may pin the buffer it is given instead of copying it, for its
 * fiber's sn_conn_read_some; a pinned buffer may be lent to output too, until the pin goes at
 * the fiber's next read.
 *
 * Budget: at most 7/8 of the ring is lent at once (SN__NET_LEND_MAX: receiving keeps an
 * eighth), and at most half of it to output (SN__NET_LEND_OUT_MAX: peers that do not read
 * hold their echoes' buffers for good, while a stream's pins last only until its fiber reads
 * on). Pins and output references once shared half the ring: with 64 fiber echoes on a core,
 * buffers received but not read yet spent it, and the streams copied what they could not
 * keep lent (docs/PERFORMANCE.md, "sn-echo on sn_serve").
 */
#include "reactor/net_internal.h"

#include <errno.h>
#include <stddef.h>

/* Drops a reference on a ring buffer: a stream's pin or a queued write's. */
static void lend_drop(struct sn__lend *l, bool pin)
{
    struct sn__netc *nc = l->nc;
    if (pin)
        l->pins--;
    else if (--l->outs == 0)
        nc->nout--;
    if (--l->refs)
        return;
    nc->nlent--;
    if (!l->presenting)
        sn__netc_buf_return(nc, (unsigned)(l - nc->lend));
    sn__netc_unref(nc);
}

/* The lend record of the ring buffer holding data[0..len), when it may be lent now: the
 * buffer on_data is being given, or one a stream holds (pinned); else NULL. */
static struct sn__lend *lendable(struct sn__netc *nc, const char *p, size_t len)
{
    if (!nc->bufs || p < nc->bufs || p >= nc->bufs + (size_t)SN__NET_NBUFS * SN__NET_BUFSZ)
        return NULL;
    size_t bid = (size_t)(p - nc->bufs) / SN__NET_BUFSZ;
    const char *buf = sn__netc_buf(nc, (unsigned)bid);
    size_t valid = (int)bid == nc->cur_bid ? nc->cur_len : nc->lend[bid].pins ? SN__NET_BUFSZ : 0;
    if (len > valid || (size_t)(p - buf) > valid - len)
        return NULL;
    return &nc->lend[bid];
}

/* A queued write's reference is gone (sent, or the output dropped). */
static void lend_release(void *arg)
{
    lend_drop(arg, false);
}

/* Takes a reference on a ring buffer for a stream (pin) or the output. */
static void lend_take(struct sn__lend *l, bool pin)
{
    if (l->refs++ == 0) {
        l->nc->nlent++;
        sn__netc_ref(l->nc); /* the buffers must outlive the last reference */
    }
    if (pin)
        l->pins++;
    else if (l->outs++ == 0)
        l->nc->nout++;
}

/* Whether the output may take a reference on l: within the output's share of the ring
 * (peers that do not read hold their echoes' buffers, not the whole ring), and within the
 * budget of all lent buffers when l is not lent yet. */
static bool output_may_take(const struct sn__netc *nc, const struct sn__lend *l)
{
    return (l->outs || nc->nout < nc->out_max) && (l->refs || nc->nlent < nc->lend_max);
}

/* The block of c's stream that data[0..len) lies in when it is the slice read_some handed
 * out last (a receive buffer the stream copied whole), else NULL. */
static struct sn__sblock *slice_block(const struct sn_conn *c, const char *p, size_t len)
{
    const struct sn__stream *st = c->stream;
    if (!st || !st->run_out || !st->runs[0].blk)
        return NULL;
    const struct sn__run *r = &st->runs[0];
    return p >= r->data && len <= r->len && (size_t)(p - r->data) <= r->len - len ? r->blk : NULL;
}

/* Queues a slice of a block by reference (the block lives until the write is released). */
static int write_block(struct sn_conn *c, const void *data, size_t len, struct sn__sblock *b)
{
    b->refs++; /* first: the stream holds one, so a failure's drop never frees it */
    int rc = sn_conn_write_ref(c, data, len, sn__sblock_release, b);
    if (rc < 0)
        b->refs--;
    return rc < 0 ? rc : 0;
}

int sn_conn_write_input(struct sn_conn *c, const void *data, size_t len)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (c->wr_closed)
        return sn__conn_write_err(c);
    struct sn__sblock *b = len < SN__NET_LEND_MIN ? NULL : slice_block(c, data, len);
    if (b)
        return write_block(c, data, len, b);
    struct sn__netc *nc = c->nc; /* the calling core's: c is on it */
    struct sn__lend *l = len < SN__NET_LEND_MIN ? NULL : lendable(nc, data, len);
    if (!l || !output_may_take(nc, l)) {
        nc->counts.out_budget += l != NULL;
        return sn_conn_write(c, data, len);
    }
    int rc = sn_conn_write_ref(c, data, len, lend_release, l);
    if (rc < 0)
        return rc;
    lend_take(l, false);
    return 0;
}

struct sn__lend *sn__conn_pin_input(struct sn_conn *c, const char *data, size_t len)
{
    struct sn__netc *nc = c->nc;
    struct sn__lend *l = nc->cur_bid < 0 ? NULL : lendable(nc, data, len);
    if (!l || l != &nc->lend[nc->cur_bid]) {
        nc->counts.lend_other++;
        return NULL;
    }
    if (len < SN__NET_LEND_MIN) {
        nc->counts.lend_small++;
        return NULL;
    }
    if (nc->nlent >= nc->lend_max && !l->refs) {
        nc->counts.lend_budget++;
        return NULL;
    }
    nc->counts.stream_lent++;
    lend_take(l, true);
    return l;
}

void sn__lend_unpin(struct sn__lend *l)
{
    lend_drop(l, true);
}
