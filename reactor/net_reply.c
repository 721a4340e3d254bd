/*
 * Reply slots (include/sn/reply.h): a FIFO of slots per connection, in request order.
 *
 * The head of the FIFO (the oldest slot not written out) writes straight into the
 * connection's output. Every later slot keeps its bytes in its own chunk list: the first
 * bytes in a block of the core's reply pool (SN__REPLY_BLOCK), more in malloc'd chunks of
 * at least SN__NET_CHUNK; write_ref adds a reference chunk. When the head ends it leaves the
 * FIFO, and the next slot's chunks are spliced into the output as they are (no copy): the
 * output frees pooled chunks back to the pool once sent. A slot that ends while it is not
 * the head stays in the FIFO, marked ended, until its turn comes.
 *
 * Direct writes (sn_conn_write, sn_conn_write_ref) made while the FIFO is not empty go
 * behind it: into the last slot when it has ended (nobody else writes there any more), else
 * into a new slot that is ended at once.
 *
 * Counters: nslots (slots in the FIFO) and reply_mem (buffer bytes of the slots behind the
 * head) feed the backpressure of net_conn.c (sn__conn_over / sn__conn_under_half). Crossing
 * a mark calls sn__conn_progress, which pauses or resumes reading; inside a callback that
 * call does nothing and the callback's end decides.
 *
 * The connection failed or closed: its final step drops every buffered byte and frees the
 * slots that ended; the open ones are "orphans" that only count (nslots) until they end.
 * The connection's memory (and its core's netc, owner of the pool) lives until then.
 */
#include "reactor/net_internal.h"

#include <sn/fiber.h>
#include <sn/reply.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- slot memory ------------------------------------------------------------------------ */

static struct sn_reply *slot_new(struct sn_conn *c, bool ended)
{
    struct sn_reply *r = sn__sched_obj(sn__tls_sched);
    *r = (struct sn_reply){.conn = c, .ended = ended};
    if (c->rtail)
        c->rtail->next = r;
    else
        c->rhead = r;
    c->rtail = r;
    c->nslots++;
    return r;
}

static void slot_drop_bytes(struct sn_conn *c, struct sn_reply *r)
{
    struct sn__chunk *k = r->head;
    while (k) {
        struct sn__chunk *next = k->next;
        sn__chunk_free(k);
        k = next;
    }
    c->reply_mem -= r->mem;
    r->head = r->tail = NULL;
    r->len = r->mem = 0;
}

static void slot_free(struct sn_conn *c, struct sn_reply *r)
{
    c->nslots--;
    sn__sched_obj_put(sn__tls_sched, r);
}

/* ---- buffering behind the head ------------------------------------------------------------ */

static struct sn__chunk *chunk_new(struct sn__netc *nc, size_t need, size_t *mem)
{
    struct sn__chunk *k;
    if (need <= SN__REPLY_CAP) {
        k = sn__pool_get(&nc->rpool);
        memset(k, 0, sizeof *k);
        k->pool = &nc->rpool;
        k->cap = SN__REPLY_CAP;
        *mem = SN__REPLY_BLOCK;
    } else {
        size_t cap = need > SN__NET_CHUNK ? need : SN__NET_CHUNK;
        if (!(k = malloc(sizeof *k + cap)))
            return NULL;
        memset(k, 0, sizeof *k);
        k->cap = cap;
        *mem = sizeof *k + cap;
    }
    k->data = k->buf;
    return k;
}

static void slot_append_chunk(struct sn_reply *r, struct sn__chunk *k)
{
    k->next = NULL;
    if (r->tail)
        r->tail->next = k;
    else
        r->head = k;
    r->tail = k;
}

/* Reading pauses when this slot's bytes bring the connection over its limits. */
static void pressure(struct sn_conn *c)
{
    if (!c->paused && sn__conn_over(c))
        sn__conn_progress(c);
}

/* Copies data into r's chunks (r is not the head). 0 or -ENOMEM (nothing kept). */
static int slot_buffer(struct sn_conn *c, struct sn_reply *r, const void *data, size_t len)
{
    struct sn__chunk *t = r->tail;
    size_t room = t && t->cap ? t->cap - t->len : 0;
    size_t first = len < room ? len : room, rest = len - first;
    if (rest) {
        size_t mem;
        struct sn__chunk *k = chunk_new(c->nc, rest, &mem);
        if (!k)
            return -ENOMEM;
        memcpy(k->buf, (const char *)data + first, rest);
        k->len = rest;
        slot_append_chunk(r, k);
        r->mem += mem;
        c->reply_mem += mem;
    }
    if (first) {
        memcpy(t->data + t->len, data, first);
        t->len += first;
    }
    r->len += len;
    pressure(c);
    return 0;
}

static void slot_buffer_ref(struct sn_conn *c, struct sn_reply *r, struct sn__chunk *k)
{
    slot_append_chunk(r, k);
    r->len += k->len;
    r->mem += sizeof *k;
    c->reply_mem += sizeof *k;
    pressure(c);
}

/* The slot that direct writes go into: the last one when it has ended, else a new one. */
static struct sn_reply *behind(struct sn_conn *c)
{
    return c->rtail->ended ? c->rtail : slot_new(c, true);
}

int sn__reply_behind(struct sn_conn *c, const void *data, size_t len)
{
    struct sn_reply *r = behind(c);
    return slot_buffer(c, r, data, len);
}

int sn__reply_behind_ref(struct sn_conn *c, struct sn__chunk *k)
{
    slot_buffer_ref(c, behind(c), k);
    return 0;
}

/* ---- the head moves on -------------------------------------------------------------------- */

/* True while the connection sends: not failed, aborted or finished. */
static bool sending(const struct sn_conn *c)
{
    return !c->aborting && !c->fin_queued;
}

/* r became the head: its buffered bytes go into the output, in one splice. */
static void slot_to_output(struct sn_conn *c, struct sn_reply *r)
{
    if (!r->head)
        return;
    if (!sending(c)) {
        slot_drop_bytes(c, r);
        return;
    }
    c->reply_mem -= r->mem;
    struct sn__chunk *head = r->head, *tail = r->tail;
    size_t len = r->len;
    r->head = r->tail = NULL;
    r->len = r->mem = 0;
    /* A short answer in one block is copied behind the output's last bytes instead: one more
     * iovec per answer (and a send per 32 of them) would cost more than the copy. */
    if (head == tail && head->pool && len <= SN__REPLY_COPY_MAX &&
        sn__conn_out_copy(c, head->data, len) == 0) {
        sn__chunk_free(head);
        return;
    }
    sn__conn_out_splice(c, head, tail, len);
}

/* Frees the ended slots at the head, moving the next one's bytes out each time. */
static void advance(struct sn_conn *c)
{
    struct sn_reply *r;
    while ((r = c->rhead) && r->ended) {
        c->rhead = r->next;
        if (!c->rhead)
            c->rtail = NULL;
        slot_free(c, r);
        if (c->rhead)
            slot_to_output(c, c->rhead);
    }
}

/* After slots left: resume reading at half, wake fibers waiting for room, and let a close
 * or shutdown that waited for the slots go on. */
static void slots_left(struct sn_conn *c)
{
    if (sn_likely(!c->paused && !c->reply_room.head && !c->want_close && !c->want_shut))
        return; /* (the common case: nobody waits for the slots) */
    bool half = sn__conn_under_half(c);
    if (half && c->reply_room.head)
        sn__waiters_settle(&c->reply_room, 0, 0);
    if ((c->paused && half) || (!c->rhead && (c->want_close || c->want_shut)))
        sn__conn_progress(c);
}

void sn__reply_conn_finished(struct sn_conn *c)
{
    struct sn_reply *r = c->rhead;
    c->rhead = c->rtail = NULL;
    while (r) {
        struct sn_reply *next = r->next;
        slot_drop_bytes(c, r);
        r->next = NULL;
        if (r->ended)
            slot_free(c, r);
        r = next;
    }
    if (c->reply_room.head)
        sn__waiters_settle(&c->reply_room, 0, 0); /* they see the connection is gone */
}

/* ---- public ------------------------------------------------------------------------------- */

/* A fiber waits in sn_reply_begin while this holds (reading pauses at the same marks). */
static bool no_room(const struct sn_conn *c)
{
    return !c->wr_closed && sn__conn_over(c);
}

/* In a fiber: waits until the connection is back at half of its limits (slots_left), or
 * ends. 0, or the wait's error. */
static int wait_room(struct sn_conn *c)
{
    while (no_room(c)) {
        int rc = sn_await(sn__waiters_add(&c->reply_room), NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int sn_reply_begin(struct sn_conn *c, struct sn_reply **out)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (sn_unlikely(no_room(c)) && sn_in_fiber()) {
        int rc = wait_room(c);
        if (rc)
            return rc;
    }
    if (c->wr_closed)
        return sn__conn_write_err(c);
    *out = slot_new(c, false);
    if (sn_unlikely(c->nslots >= c->lim.max_open_replies))
        pressure(c);
    return 0;
}

/* The error of a write or end on a slot whose connection no longer sends, else 0. */
static int slot_dead(const struct sn_conn *c)
{
    return sending(c) ? 0 : sn__conn_write_err(c);
}

int sn_reply_write(struct sn_reply *r, const void *data, size_t len)
{
    struct sn_conn *c = r->conn;
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (r->ended)
        return -EINVAL;
    int rc = slot_dead(c);
    if (rc || len == 0)
        return rc;
    if (r == c->rhead)
        return sn__conn_out_copy(c, data, len);
    return slot_buffer(c, r, data, len);
}

int sn_reply_write_ref(struct sn_reply *r, const void *data, size_t len, void (*release)(void *arg),
                       void *release_arg)
{
    struct sn_conn *c = r->conn;
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (r->ended)
        return -EINVAL;
    int rc = slot_dead(c);
    if (rc)
        return rc;
    struct sn__chunk *k = sn__chunk_ref(data, len, release, release_arg);
    if (!k)
        return -ENOMEM;
    if (r == c->rhead)
        sn__conn_out_splice(c, k, k, len);
    else
        slot_buffer_ref(c, r, k);
    return 0;
}

int sn_reply_printf(struct sn_reply *r, const char *fmt, ...)
{
    char stack[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof stack) {
        int rc = sn_reply_write(r, stack, (size_t)n);
        return rc ? rc : n;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sn_reply_write(r, big, (size_t)n);
    free(big);
    return rc ? rc : n;
}

int sn_reply_end(struct sn_reply *r)
{
    struct sn_conn *c = r->conn;
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (r->ended)
        return -EINVAL;
    if (c->finished) {
        /* An orphan: only counted. The last one (with no hold) frees the connection. */
        int err = sn__conn_write_err(c);
        slot_free(c, r);
        if (!c->nslots && !c->holds)
            sn__conn_free(c);
        return err;
    }
    int rc = slot_dead(c);
    r->ended = true;
    if (r == c->rhead) {
        advance(c);
        slots_left(c);
    }
    return rc;
}

struct sn_conn *sn_reply_conn(const struct sn_reply *r)
{
    return r->conn;
}
